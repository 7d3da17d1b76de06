"""Property-based isolation between models: two models' groups in one registry, judged by one gate (its settings
per event's group, GateRuntime.settings_for, as the handler does) and recorded in one shared ledger table. Random
actions of both models interleave (approvals, moves, deployments, late and repeated deliveries, forged results)
and some events are forged across models (a state change or a deployment result of one model's package that
claims the other's group). Whatever happens, no action of one model changes the other's state: its registry
stages, its ledger records and decisions. Each model's own promotion properties are those of
tests/functional/test_promotion_properties.py, whose World this reuses."""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.promotion_gate.settings import GateRuntime
from mlplatform.registry.package_events import RejectedEvent, parse_state_change
from mlplatform.registry.result_recording import parse_result
from tests.functional.promotion_testkit import promotion_aws  # noqa: F401  (a fixture)
from tests.functional.test_promotion_properties import ACTIONS, SERVERS, World

PREFIX = "mlops-dev-"
MODELS = ("breast-cancer", "wine")

cross = st.tuples(st.just("cross"), st.sampled_from(["change", "result"]))
STEPS = st.lists(st.tuples(st.integers(0, len(MODELS) - 1), st.one_of(ACTIONS.map(lambda a: a[0]), cross)),
                 min_size=1, max_size=16)


class EventsByGroup:
    """The registry's events, handed to each model's world by the group they name (EventBridge's rule delivers
    every group's events to the one gate; here each world judges its own, the cross actions the others)."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self.pending: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def taker(self, group: str) -> Any:
        def take() -> list[dict[str, Any]]:
            for event in self.registry.take_events():
                self.pending[event["detail"]["ModelPackageGroupName"]].append(event)
            taken, self.pending[group] = self.pending[group], []
            return taken
        return take


def snapshot(world: World) -> tuple[Any, ...]:
    decisions = [(d.version, d.outcome, d.from_stage, d.to_stage, d.resulting_stage) for d in world.ledger.decisions()]
    records = [world.ledger.package(version) for version in range(1, len(world.arns) + 1)]
    return world.registry_state(), decisions, [copy.deepcopy(r.__dict__) if r else None for r in records]


def forge_across(source: World, target: World, kind: str) -> None:
    """An event of ``source``'s package that claims ``target``'s group is refused before it reaches the target."""
    if kind == "change":
        if not source.history:
            return
        event = copy.deepcopy(random.Random(len(source.history)).choice(source.history))
        event["detail"]["ModelPackageGroupName"] = target.group
        with pytest.raises(RejectedEvent):
            parse_state_change(event, expected_group=target.group)
    else:
        event = source.result_event(0, healthy=True)
        event["detail"]["model_package_group"] = target.group
        with pytest.raises(RejectedEvent):
            parse_result(event, group=target.group, servers=SERVERS)


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_no_event_of_one_model_changes_another_models_state(
    promotion_aws: Any, steps: list[tuple[int, tuple[Any, ...]]]  # noqa: F811
) -> None:
    registry, resources = promotion_aws
    runtime = GateRuntime(group_prefix=PREFIX, ledger_table=resources.ledger_table,
                          promotion_topic_arn=resources.topic_arn, event_bus_name=resources.event_bus,
                          servers=SERVERS, protected_versions=2, idempotency_table="unused", idempotency_ttl_seconds=60)
    events = EventsByGroup(registry)
    suffix = random.Random(id(steps)).randrange(10**6)  # a fresh pair of groups per example (moto lives on)
    worlds = [World(registry, resources, group=f"{PREFIX}{model}-{suffix}",
                    settings=runtime.settings_for(f"{PREFIX}{model}-{suffix}"),
                    take_events=events.taker(f"{PREFIX}{model}-{suffix}")) for model in MODELS]
    assert [w.settings.model for w in worlds] == [f"{m}-{suffix}" for m in MODELS]
    for index, action in steps:
        world, other = worlds[index], worlds[1 - index]
        before = snapshot(other)
        if action[0] == "cross":
            forge_across(world, other, action[1])
        else:
            world.act(action)
        other.collect()  # the other model's events so far (none may have come from this action)
        assert snapshot(other) == before, f"{world.group}'s {action[0]} changed {other.group}'s state"
    for world in worlds:  # each model's ledger still explains its own registry
        final = world.registry_state()
        for version, (stage, stage_status, approval) in enumerate(final, start=1):
            record = world.ledger.package(version)
            if record is not None and all(e["id"] in world.delivered for e in world.history):
                assert (record.stage, record.stage_status, record.approval_status) == (stage, stage_status,
                                                                                      approval)
