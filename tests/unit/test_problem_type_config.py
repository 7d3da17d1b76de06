"""A model's problem type in the configuration (issue 25): the default cdk.json has one model of each kind, a gate
metric or threshold that does not fit the model's kind fails with the model's name and the allowed values, and so
does a schema whose label is of another kind. Every accepted gate metric is one the runtime's parsers accept."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlsettings.config import ConfigError
from mlsettings.config.parsing import load_environments, project_context
from mlsettings.functions.contracts import DriftMonitorEnvironment
from mlsettings.problem_types import PROBLEM_TYPES, TYPES
from mlsettings.quality import gate_checks


def _with_model(name: str, patch: dict[str, Any]) -> dict[str, Any]:
    context = copy.deepcopy(project_context())
    context["models"][name].update(patch)
    return context


def test_default_configuration_has_a_model_of_each_kind() -> None:
    models = project_context()["models"]
    assert sorted({entry["problem_type"] for entry in models.values()}) == sorted(PROBLEM_TYPES)
    for config in load_environments(project_context()).values():
        for view in config.models:
            assert view.model is not None
            kind = TYPES[view.model.problem_type]
            assert view.training.quality_gate.metric in [m.name for m in kind.gate_metrics]
            gate_checks(view.training.quality_gate.metric)  # the pipeline definition's and local run's parser
            drift = DriftMonitorEnvironment.for_config(view, capture_bucket="capture", report_bucket="reports")
            assert DriftMonitorEnvironment.from_env(drift.to_env()).quality_metric == view.training.quality_gate.metric


@pytest.mark.parametrize(("model", "patch", "message"), [
    ("wine", {"training": {"quality_gate": {"metric": "auc", "threshold": 0.9}}},
     "models.wine.environments.dev.training.quality_gate.metric is 'auc', a binary metric; model 'wine' is "
     "multiclass: allowed: accuracy, macro_f1, log_loss"),
    ("diabetes", {"training": {"quality_gate": {"metric": "accuracy", "threshold": 0.9}}},
     "model 'diabetes' is regression: allowed: rmse, mae, r2"),
    ("diabetes", {"training": {"quality_gate": {"metric": "rmse", "threshold": -1}}},
     "training.quality_gate.threshold is -1; allowed: a threshold for rmse lies in [0, inf]"),
    ("diabetes", {"training": {"quality_gate": {"metric": "r2", "threshold": 1.5}}},
     "training.quality_gate.threshold is 1.5; allowed: a threshold for r2 lies in [-inf, 1]"),
    ("diabetes", {"problem_type": "multiclass", "training": {"quality_gate": {"metric": "accuracy",
                                                                               "threshold": 0.5}}},
     "models.diabetes.problem_type is 'multiclass' but its schema pipelines/schemas/diabetes.json has a "
     "regression label"),
    ("wine", {"problem_type": "ordinal"}, "models.wine.problem_type is 'ordinal'; allowed: one of"),
])
def test_a_gate_or_schema_of_another_kind_names_the_model(model: str, patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_environments(_with_model(model, patch))
    assert message in str(caught.value)


def test_a_regression_threshold_above_one_is_accepted() -> None:
    config = load_environments(_with_model("diabetes", {"training": {"quality_gate": {"metric": "mae",
                                                                                       "threshold": 60}}}))
    assert config["dev"].for_model("diabetes").training.quality_gate.threshold == 60
