"""Alarms per kind of model (issue 25): each model stack alarms on its prediction shift, and on a confidence shift
only when its kind has a confidence (binary and multiclass; a regression model states none). One model of each kind
is the sample (the tests grow with the kinds, not with the models)."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from mlsettings.config import load_environments
from mlsettings.problem_types import PROBLEM_TYPES, TYPES
from testkit.model_sample import sampled_project_context
from tests.infra.conftest import SynthesizedApp

MODELS = {view.model.name: view.model.problem_type
          for view in load_environments(sampled_project_context())["dev"].models if view.model is not None}
SAMPLES: dict[str, str] = {}  # a kind: the first model of that kind in cdk.json
for _name, _kind in MODELS.items():
    SAMPLES.setdefault(_kind, _name)


def _alarm_ids(synthesized: SynthesizedApp, model: str) -> list[str]:
    template = Template.from_stack(synthesized.stages["dev"].models[model])
    return list(template.find_resources("AWS::CloudWatch::Alarm"))


@pytest.mark.parametrize("model", sorted(SAMPLES.values()))
def test_confidence_alarms_follow_the_kind(synthesized: SynthesizedApp, model: str) -> None:
    ids = _alarm_ids(synthesized, model)
    prediction = [i for i in ids if "PredictionShift" in i]
    confidence = [i for i in ids if "ConfidenceShift" in i]
    assert prediction, ids
    has_confidence = TYPES[MODELS[model]].output.confidence is not None
    assert len(confidence) == (len(prediction) if has_confidence else 0)


def test_the_default_configuration_alarms_for_each_kind() -> None:
    assert sorted(SAMPLES) == sorted(PROBLEM_TYPES) == ["binary", "multiclass", "regression"]


@pytest.mark.parametrize("model", sorted(SAMPLES.values()))
def test_the_dashboard_graphs_the_kinds_quality_metrics(synthesized: SynthesizedApp, model: str) -> None:
    from mlsettings.problem_types import QUALITY_METRIC_NAMES

    template = Template.from_stack(synthesized.stages["dev"].models[model])
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"]).replace("\\", "")  # the widget JSON, unescaped
    kind = TYPES[MODELS[model]]
    assert f"Ground-truth quality ({kind.name})" in body
    for name, metric in QUALITY_METRIC_NAMES.items():
        assert (f'"{metric}"' in body) is (name in kind.quality_metrics), name
    assert ("ConfidenceShift" in body) is (kind.output.confidence is not None)
