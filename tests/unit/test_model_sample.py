"""The sample of models the synthesizing tests and the e2e test use (testkit/model_sample.py): it covers MODEL, every
kind and every override path of cdk.json's models, and its size does not grow with the number of models."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

from mlsettings.config import load_environments, project_context
from testkit.model_sample import (
    override_paths,
    sample_models,
    sampled_context,
    sampled_project_context,
)
from testkit.serving_world import MODEL

REPO = Path(__file__).resolve().parents[2]
SHIPPED = project_context()["models"]


def _many(count: int) -> dict[str, Any]:
    """cdk.json's models and ``count`` more, each a copy of a shipped one (same kind, same overrides) under a new
    name."""
    models = copy.deepcopy(SHIPPED)
    shipped = list(SHIPPED.items())
    for index in range(count):
        name, entry = shipped[index % len(shipped)]
        models[f"{name[:20]}-copy{index}"] = copy.deepcopy(entry)
    return models


def test_the_shipped_sample_holds_model_one_of_each_kind_and_every_override_path() -> None:
    sample = sample_models(SHIPPED)
    assert MODEL in sample
    assert {SHIPPED[name]["problem_type"] for name in sample} == {e["problem_type"] for e in SHIPPED.values()}
    assert set().union(*(override_paths(SHIPPED[n]) for n in sample)) == \
        set().union(*(override_paths(e) for e in SHIPPED.values()))


@pytest.mark.parametrize("count", [10, 50, 200])
def test_the_sample_does_not_grow_with_copies_of_the_shipped_shapes(count: int) -> None:
    assert sample_models(_many(count)) == sample_models(SHIPPED)


def test_a_new_kind_or_a_new_override_path_joins_the_sample() -> None:
    models = _many(20)
    models["new-path"] = {**copy.deepcopy(SHIPPED[MODEL]), "monitoring": {"drift": {"psi_threshold": 0.3}}}
    models["new-kind"] = {**copy.deepcopy(SHIPPED[MODEL]), "training": {"code": {"kind": "some-other-kind"}}}
    sample = sample_models(models)
    assert {"new-path", "new-kind"} <= set(sample)
    assert len(sample) == len(sample_models(SHIPPED)) + 2


def test_an_instance_type_of_another_storage_class_joins_the_sample_another_of_the_same_does_not() -> None:
    """A type with instance storage drops the volume KMS key from the jobs: a different template for one setting
    path that other models already override."""
    models = _many(5)
    models["same-class"] = copy.deepcopy(SHIPPED["diabetes-sklearn"])
    models["same-class"]["training"]["instance_type"] = "ml.c5.xlarge"  # EBS, no GPU, like ml.m5.xlarge
    models["local-nvme"] = copy.deepcopy(SHIPPED["diabetes-sklearn"])
    models["local-nvme"]["training"]["instance_type"] = "ml.m5d.xlarge"
    sample = sample_models(models)
    assert "local-nvme" in sample and "same-class" not in sample


def test_the_sampled_context_is_a_valid_configuration_with_only_the_sample() -> None:
    context = sampled_project_context()
    assert list(context["models"]) == sample_models(SHIPPED)
    configs = load_environments(context)
    assert {tuple(c.model_names) for c in configs.values()} == {tuple(sample_models(SHIPPED))}
    # everything but the models is cdk.json's
    full = project_context()
    assert {k: v for k, v in context.items() if k != "models"} == {k: v for k, v in full.items() if k != "models"}
    assert sampled_context(full) == context
    context["models"].clear()  # a copy: the next caller still gets the sample
    assert list(sampled_project_context()["models"]) == sample_models(SHIPPED)


ALLOWED_FULL_CONTEXT = {
    # attributes a recorded call to the model it names: every model of cdk.json, not only the synthesized ones
    "tests/infra/test_who_may_call.py",
    # each changed cdk.json is refused by the configuration's checks before any stack is built
    "tests/functional/test_config_validate.py",
}


def _calls(tree: ast.AST, name: str) -> list[int]:
    return [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Call) and
            ((isinstance(node.func, ast.Name) and node.func.id == name)
             or (isinstance(node.func, ast.Attribute) and node.func.attr == name))]


def test_synthesizing_and_e2e_tests_read_the_sample_not_every_model() -> None:
    """Every test module that synthesizes (tests/infra, or any that calls build_app) or plays the demo (tests/e2e)
    reads cdk.json through the sample: one call of project_context() there would make the suite grow with the
    models again."""
    offenders = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        synthesizes = relative.startswith(("tests/infra/", "tests/e2e/")) or _calls(tree, "build_app")
        if synthesizes and _calls(tree, "project_context") and relative not in ALLOWED_FULL_CONTEXT:
            offenders.append(f"{relative}:{_calls(tree, 'project_context')}")
    assert offenders == []


def test_the_lifecycle_sample_covers_kinds_and_serving_shapes_not_training_variants() -> None:
    """The e2e lifecycle plays one model per problem type, per way of serving (the platform's handler or the model's
    own image) and per serving, inference or monitoring override shape; a model that differs only in how a framework
    image trains it (its training kind, program, hooks, instance type) adds nothing to it."""
    from testkit.model_sample import LIFECYCLE

    models = _many(30)
    lifecycle = sample_models(models, spec=LIFECYCLE)
    assert {models[name]["problem_type"] for name in lifecycle} == {e["problem_type"] for e in SHIPPED.values()}
    kinds = [models[name].get("training", {}).get("code", {}).get("kind") for name in lifecycle]
    assert sorted(kinds, key=str).count("image") == 1 and set(kinds) <= {None, "image"}
    models["new-alarm"] = {**copy.deepcopy(SHIPPED[MODEL]),
                           "environments": {"prod": {"monitoring": {"alarms": {"confidence_shift_psi": 0.4}}}}}
    assert "new-alarm" in sample_models(models, spec=LIFECYCLE)
    assert len(sample_models(models, spec=LIFECYCLE)) == len(lifecycle) + 1
