"""The models the synthesizing tests build and the e2e test plays: a sample of cdk.json's models that grows with the
kinds of model and the shapes of their overrides, never with their number (issue 24: the suite must not grow
linearly with the models in cdk.json).

The sample holds MODEL (the model every test world serves), the first model of each value of every *covered
dimension* (its problem type; its training kind; whether an instance type it sets has instance storage or a GPU),
and then, greedily, models whose overrides reach setting paths
no chosen model overrides yet, until every path some model overrides is covered. A path is a leaf of the model's
entry (``serving.sla.p99_latency_ms``, ``environments.prod.serving.champion.min_instances``): how many there can be
is fixed by the settings, not by the number of models. Every model is still synthesized and gated by ``make gates``
(``mlops synth``) and played by ``make demo``; what differs between one model and another of the same shape is only
its name, which the configuration checks for every model (tests/unit/test_config_models.py).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from mlsettings.config import project_context
from mlsettings.instance_types import has_local_storage, is_gpu_instance
from mlsettings.training_code import IMAGE
from testkit.pushed_images import as_if_pushed
from testkit.serving_world import MODEL

# Settings whose every value changes what is synthesized or played (each value is covered by one model at least).
COVERED_DIMENSIONS = ("problem_type", "training.code.kind")
INSTANCE_TYPE_PATHS = ("training.instance_type", "training.processing_instance_type")
# Leaves every model entry has; their values name files and people, not shapes.
IDENTITY_PATHS = frozenset({"schema_file", "owner", "problem_type"})


def _leaves(entry: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in entry.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, f"{path}.")
        else:
            yield path, value


@dataclass(frozen=True)
class SampleSpec:
    """What a sample must cover: every value of ``dimensions`` and every override path outside ``ignored``."""

    dimensions: tuple[str, ...] = COVERED_DIMENSIONS
    ignored: tuple[str, ...] = ()
    """Path prefixes (per model and per environment) whose overrides this sample need not cover."""
    instance_types: bool = True
    """Cover what an instance type changes (instance storage, GPU)."""
    own_image: bool = True
    """Cover whether the model serves its team's own image (training.code.kind image): its endpoints run another
    server, its golden payloads are CSV only, its fallback model lives beside its evaluation report."""


SYNTHESIS = SampleSpec()
"""What synthesis and the gates depend on: every kind, training kind, instance class and override path."""
LIFECYCLE = SampleSpec(dimensions=("problem_type",), ignored=("training.",), instance_types=False)
"""What the e2e lifecycle (promotion, serving, A/B, drift, rollback) depends on: the problem type, whether an own
image serves the model, and the serving, inference and monitoring overrides. How a framework model is trained — its
training kind, program, hooks, instance type — ends in the same model folder and is played by the training tests
(tests/functional/test_script_mode_training.py, the contract tier), not again by the lifecycle."""


def override_paths(entry: Mapping[str, Any], ignored: tuple[str, ...] = ()) -> frozenset[str]:
    """The setting paths a model entry sets beyond its identity (outside ``ignored``, per model or per
    environment: ``training.`` also ignores ``environments.<env>.training.``)."""
    def skipped(path: str) -> bool:
        local = path.split(".", 2)[2] if path.startswith("environments.") and path.count(".") >= 2 else path
        return local.startswith(ignored) if ignored else False

    return frozenset(path for path, _value in _leaves(entry) if path not in IDENTITY_PATHS and not skipped(path))


def _dimension_values(entry: Mapping[str, Any], spec: SampleSpec = SYNTHESIS) -> set[tuple[str, str]]:
    leaves = dict(_leaves(entry))
    found = {(dimension, repr(leaves.get(dimension))) for dimension in spec.dimensions}
    if spec.own_image:
        found.add(("serves its own image", repr(leaves.get("training.code.kind") == IMAGE)))
    # What an instance type changes in the synthesized pipeline, whichever type it is: a volume KMS key or none
    # (instance storage), a GPU image or not (mlsettings.instance_types).
    for path, value in leaves.items() if spec.instance_types else ():
        if path.endswith(INSTANCE_TYPE_PATHS) and isinstance(value, str):
            found |= {(f"{path}:local-storage", repr(has_local_storage(value))),
                      (f"{path}:gpu", repr(is_gpu_instance(value)))}
    return found


def sample_models(models: Mapping[str, Mapping[str, Any]], always: str = MODEL,
                  spec: SampleSpec = SYNTHESIS) -> list[str]:
    """The names of the sample, in cdk.json's order (see the module's docstring)."""
    chosen: list[str] = [always] if always in models else []
    covered_values = set().union(*(_dimension_values(models[name], spec) for name in chosen))
    for name, entry in models.items():
        if not _dimension_values(entry, spec) <= covered_values:
            chosen.append(name)
            covered_values |= _dimension_values(entry, spec)
    paths = {name: override_paths(entry, spec.ignored) for name, entry in models.items()}
    uncovered = set().union(*paths.values()) - set().union(*(paths[name] for name in chosen))
    while uncovered:
        best = max((name for name in models if name not in chosen), key=lambda n: len(paths[n] & uncovered))
        chosen.append(best)
        uncovered -= paths[best]
    return [name for name in models if name in chosen]


def sampled_context(context: Mapping[str, Any], spec: SampleSpec = SYNTHESIS) -> dict[str, Any]:
    """``context`` (cdk.json's context block) with only the sample of its models."""
    sampled = as_if_pushed(context)  # an own image no one pushed is synthesized and played as if it were
    models = sampled.get("models")
    if isinstance(models, dict):
        sampled["models"] = {name: models[name] for name in sample_models(models, spec=spec)}
    return sampled


@cache
def _sampled_project_context(spec: SampleSpec) -> dict[str, Any]:
    return sampled_context(project_context(), spec)


def sampled_project_context(spec: SampleSpec = SYNTHESIS) -> dict[str, Any]:
    """The shipped cdk.json's context with the sample of its models (a fresh copy: callers may change it)."""
    return copy.deepcopy(_sampled_project_context(spec))
