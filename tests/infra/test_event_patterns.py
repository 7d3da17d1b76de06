"""Every EventBridge rule pattern in the synthesized templates, matched by moto's EventBridge pattern engine
(moto.events.models.EventPattern, the matcher moto's EventBridge uses) against AWS's documented sample
events (tests/fixtures/events, sources in its README) and against near-misses it must not match.

A documented sample carries AWS's example names; the test first asserts that every path the pattern filters
on exists in the sample (a misspelt key such as ``modelPackageGroupName`` would match nothing in AWS), then
sets those fields to this environment's values: the rule must match. Each filtered field changed to a value
the rule must refuse (another group, bucket, prefix or alarm state), and the untouched sample, must not.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from mlplatform.registry.deployment_results import emit_result, result_detail
from mlplatform.registry.registry_actions import emit_promotion, promotion_detail
from mlsettings.config import load_environments
from mlsettings.naming import model_package_group_name
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.cloud_model import ACCOUNT, Stage
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "events"
DOCUMENTED = {
    ("aws.sagemaker", "SageMaker Model Package State Change"): "sagemaker-model-package-state-change.json",
    ("aws.s3", "Object Created"): "s3-object-created.json",
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): "cloudwatch-alarm-state-change.json",
}


def _delivered(entry: dict[str, Any], region: str) -> dict[str, Any]:
    """A PutEvents entry as EventBridge delivers it to rules (EventBridge User Guide, "Amazon EventBridge
    events": the envelope fields)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"], "source": entry["Source"],
            "account": ACCOUNT, "time": "2026-12-01T00:00:00Z", "region": region,
            "resources": entry.get("Resources", []), "detail": json.loads(entry["Detail"])}


class _RecordingEvents:
    """Stands in for the EventBridge client: keeps what the gate's real emit_promotion sends."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


def promotion_event(group: str, stage: str, region: str, model: str = MODEL) -> dict[str, Any]:
    client = _RecordingEvents()
    emit_promotion(client, "default", promotion_detail(
        group=group, model=model, model_package_arn=f"arn:aws:sagemaker:{region}:{ACCOUNT}:model-package/{group}/3",
        version=3, target_stage=stage, reason="promotion", requested_by="arn:aws:iam::111122223333:role/approver"))
    (entry,) = client.entries
    return _delivered(entry, region)


def result_event(group: str, stage: str, region: str) -> dict[str, Any]:
    """What the deployer's real ``emit_result`` sends after a deployment."""
    client = _RecordingEvents()
    plan = {"endpoint_name": "mlops-staging", "changed_variants": ["Champion"], "request": {
        "model_package_group": group, "model_package_arn": f"arn:aws:sagemaker:{region}:{ACCOUNT}:model-package/"
        f"{group}/3", "version": 3, "target_stage": stage, "reason": "promotion", "requested_by": "approver"}}
    emit_result(client, "default", result_detail(plan=plan, environment="staging", outcome="deployed",
                                                 health_check="passed", reason="healthy",
                                                 deployed_at="2026-12-01T00:00:00.000000Z"))
    (entry,) = client.entries
    return _delivered(entry, region)


def sample(pattern: dict[str, Any], region: str) -> dict[str, Any]:
    (source,), (detail_type,) = pattern["source"], pattern["detail-type"]
    if source == "mlops.promotion":
        return promotion_event("placeholder-group", "Staging", region)
    if source == "mlops.deployment":
        return result_event("placeholder-group", "Staging", region)
    return json.loads((FIXTURES / DOCUMENTED[(source, detail_type)]).read_text())


def leaves(pattern: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[Any]]]:
    for key, value in pattern.items():
        if isinstance(value, dict):
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key), value


def _get(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for key in path:
        value = value[key]
    return value


def _set(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = [value] if isinstance(target[path[-1]], list) else value


def accepted_value(matcher: Any, current: Any) -> Any:
    if isinstance(matcher, str):
        return matcher
    if isinstance(matcher, dict) and set(matcher) == {"prefix"}:
        return f"{matcher['prefix']}{current}"
    if isinstance(matcher, dict) and set(matcher) == {"wildcard"}:
        return matcher["wildcard"].replace("*", "x")
    raise NotImplementedError(f"pattern operator {matcher!r}: extend tests/infra/test_event_patterns.py")


def refused_value(matcher: Any, current: Any) -> Any:
    if isinstance(matcher, str):
        return "OK" if matcher == "ALARM" else f"other-{matcher}"
    if isinstance(matcher, dict) and set(matcher) == {"prefix"}:
        return f"other/{matcher['prefix']}{current}"
    if isinstance(matcher, dict) and set(matcher) == {"wildcard"}:
        return "other/" + matcher["wildcard"].replace("*", "x")
    raise NotImplementedError(f"pattern operator {matcher!r}")


def rule_patterns(stage: Stage) -> list[tuple[str, dict[str, Any]]]:
    return [(rule.logical_id, stage.resolve(rule.stack, rule.properties["EventPattern"]))
            for rule in stage.resources("AWS::Events::Rule") if "EventPattern" in rule.properties]


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp) -> dict[str, Stage]:
    configs = load_environments(sampled_project_context())
    return {env: Stage.load(synthesized.outdir, env, configs[env].region) for env in ENVIRONMENTS}


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return EventPattern.load(json.dumps(pattern)).matches_event(event)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rule_matches_its_documented_event_and_refuses_near_misses(stages: dict[str, Stage], env: str) -> None:
    patterns = rule_patterns(stages[env])
    assert patterns, "no rule with an event pattern found"
    for name, pattern in patterns:
        documented = sample(pattern, stages[env].region)
        assert not matches(pattern, documented) or pattern["source"] in (["mlops.promotion"], ["mlops.deployment"]), \
            f"{name} matches AWS's example resources"
        event = copy.deepcopy(documented)
        filtered = [(path, matchers) for path, matchers in leaves(pattern)
                    if path not in (("source",), ("detail-type",))]
        for path, matchers in filtered:
            current = _get(event, path)  # KeyError: the pattern filters on a field the service does not send
            _set(event, path, accepted_value(matchers[0], current[0] if isinstance(current, list) else current))
        assert matches(pattern, event), f"{name} does not match its event {json.dumps(event)[:300]}"
        for path, matchers in [*filtered, (("source",), pattern["source"]), (("detail-type",), pattern["detail-type"])]:
            miss = copy.deepcopy(event)
            current = _get(miss, path)
            _set(miss, path, refused_value(matchers[0], current[0] if isinstance(current, list) else current))
            assert not matches(pattern, miss), f"{name} matches a near-miss at {'.'.join(path)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_accepted_promotions_reach_the_deployer_for_the_served_stages_only(stages: dict[str, Stage],
                                                                         env: str) -> None:
    """One shared rule (the environment's event router) takes every model's accepted promotions: MODEL's and another
    model's group both match, for the served stages only; a group outside the registry's does not."""
    config = load_environments(sampled_project_context())[env]
    rules = [p for name, p in rule_patterns(stages[env]) if "AcceptedPromotions" in name]
    if not config.serving.served_stages:  # the registry environment serves no stage: no deployer rule
        assert rules == []
        return
    (pattern,) = rules
    other = next(name for name in config.model_names if name != MODEL)
    for model in (MODEL, other):
        group = model_package_group_name(config.for_model(model))
        for stage in ("Staging", "Production"):
            expected = stage in config.serving.served_stages
            assert matches(pattern, promotion_event(group, stage, config.region, model)) is expected, (model, stage)
        for stage in config.serving.served_stages:
            assert not matches(pattern, promotion_event(f"other-{group}", stage, config.region, model)), model


def test_the_matcher_itself_distinguishes() -> None:
    """moto's matcher refuses a value outside the pattern's list (the validator can fail)."""
    pattern = {"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "training/"}]}}}
    assert matches(pattern, {"source": "aws.s3", "detail": {"object": {"key": "training/a.csv"}}})
    assert not matches(pattern, {"source": "aws.s3", "detail": {"object": {"key": "other/a.csv"}}})
