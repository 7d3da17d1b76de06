"""Property-based: random approver/deployer actions with SageMaker's events and the deployers' results
delivered late, out of order and more than once, and results forged by an environment or account that does
not serve Staging. Whatever happens:
* at every moment the gate accepts a version into Production (the promotion that is forwarded to the
  production account), the newest staging result delivered for it, from the staging environment's account,
  is a deployment whose health check passed — an older passed result delivered after a newer failed one,
  a duplicate, or a forged one never counts;
* once every event has been delivered, no package is in Production unless the gate accepted it into Staging
  and then, with a healthy staging deployment recorded, into Production;
* the ledger explains the final state (its restore point and its last decision match the registry);
* delivering every event again changes nothing (no decision, no registry change).

Runs the gate's flow (the handler minus Powertools idempotency, so duplicates are absorbed by the state
comparison alone) and its recording of results (``parse_result`` + ``record_result``, what the handler runs
for a result event) against moto with the realistic registry patch; each example uses a fresh group.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as count_case
from hypothesis import strategies as st

from mlplatform.registry.deployment_ledger import ACCEPTED, DEPLOYED, FAILED, DeploymentLedger
from mlplatform.registry.deployment_results import RESULT_DETAIL_TYPE, StageServer, result_detail
from mlplatform.registry.package_events import RejectedEvent, parse_state_change
from mlplatform.registry.promotion_flow import ChangeToJudge, GateClients, GateSettings, judge_change
from mlplatform.registry.result_recording import parse_result, record_result
from mlsettings.vocabulary import PRODUCTION, RESULT_SOURCE, STAGING
from tests.functional.promotion_testkit import (  # noqa: F401  (promotion_aws is a fixture)
    promotion_aws,
    register_package,
)

GATE = "arn:aws:sts::123456789012:assumed-role/PromotionGate/gate"
PACKAGES = 2
STAGING_ACCOUNT = "222222222222"
SERVERS = {STAGING: StageServer(environment="staging", account=STAGING_ACCOUNT),
           PRODUCTION: StageServer(environment="prod", account="333333333333")}

move = st.tuples(
    st.just("move"),
    st.integers(0, PACKAGES - 1),
    st.sampled_from(["Development", "Staging", "Production", "QA"]),
    st.sampled_from(["Approved", "PendingManualApproval", "Rejected"]),
)
# A diligent approver: the next stage up, approved. Listed twice (and healthy deployments favoured) so that
# enough sequences get a package all the way to Production for the property to bite.
advance = st.tuples(st.just("advance"), st.integers(0, PACKAGES - 1))
deploy_staging = st.tuples(
    st.just("deploy_staging"), st.integers(0, PACKAGES - 1), st.sampled_from([True, True, False])
)
deliver_some = st.tuples(st.just("deliver"), st.lists(st.integers(0, 1000), max_size=4))
# The deployers' results reach the registry late, twice, out of order; some come from where they must not.
deliver_results = st.tuples(st.just("deliver_results"), st.randoms(use_true_random=False),
                            st.booleans())  # True: deliver one of them a second time too
forge = st.tuples(st.just("forge"), st.integers(0, PACKAGES - 1),
                  st.sampled_from([("staging", "444444444444"), ("prod", "333333333333"),
                                   ("prod", STAGING_ACCOUNT)]))
deliver_pending = st.tuples(st.just("deliver_pending"), st.randoms(use_true_random=False))
# Approve to Staging, deploy healthy, approve to Production — with deliveries left pending in between, so
# other actions interleave with it.
happy_path = st.tuples(st.just("happy_path"), st.integers(0, PACKAGES - 1), st.randoms(use_true_random=False))
ACTIONS = st.lists(
    st.one_of(advance, advance, deliver_pending, deliver_pending, deploy_staging, move, deliver_some, happy_path,
              deliver_results, forge),
    min_size=1,
    max_size=14,
)
NEXT_STAGE = {"Development": "Staging", "Staging": "Production", "Production": "Production"}


class World:
    """One model's registry group, judged by the gate. ``settings``: the gate's settings for the group (by default
    its own); ``take_events``: where the world's SageMaker events come from (by default every event the registry
    sent; tests/functional/test_model_isolation_properties.py gives each model only its group's)."""

    def __init__(self, registry: Any, resources: Any, *, group: str | None = None,
                 settings: GateSettings | None = None, take_events: Callable[[], list[dict[str, Any]]] | None = None
                 ) -> None:
        self.registry = registry
        self.group = group or f"g-{uuid.uuid4().hex[:10]}"
        self.take_events = take_events or registry.take_events
        self.sagemaker = boto3.client("sagemaker")
        self.sagemaker.create_model_package_group(ModelPackageGroupName=self.group)
        self.settings = settings or GateSettings(
            model_package_group=self.group, model=self.group, ledger_table=resources.ledger_table,
            promotion_topic_arn=resources.topic_arn, event_bus_name=resources.event_bus,
        )
        self.clients = GateClients(sagemaker=self.sagemaker, dynamodb=boto3.client("dynamodb"),
                                   sns=boto3.client("sns"), events=boto3.client("events"))
        self.ledger = DeploymentLedger(self.clients.dynamodb, resources.ledger_table, self.group)
        self.take_events()
        self.arns = [register_package(self.sagemaker, self.group) for _ in range(PACKAGES)]
        self.history: list[dict[str, Any]] = []
        self.delivered: set[str] = set()
        self.results: list[dict[str, Any]] = []  # result events the deployers sent, not yet delivered
        self.trusted: dict[int, list[tuple[str, bool]]] = {}  # version → (deployed_at, healthy) recorded
        self.clock = 0  # the staging deployer's clock (deployed_at)
        self.production_acceptances = 0
        self.collect()

    def collect(self) -> None:
        self.history += self.take_events()

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_state_change(event, expected_group=self.group)
        with self.registry.acting_as(GATE):
            result = judge_change(
                ChangeToJudge(model_package_arn=parsed.detail.ModelPackageArn,
                              version=parsed.detail.ModelPackageVersion, event_id=parsed.id),
                settings=self.settings, clients=self.clients,
            )
        self.delivered.add(event["id"])
        if result.get("outcome") == ACCEPTED and result.get("to_stage") == PRODUCTION:
            # What is forwarded to the production account now: the newest trusted staging result must pass.
            self.production_acceptances += 1
            newest = max(self.trusted.get(parsed.detail.ModelPackageVersion, []), default=None)
            assert newest is not None and newest[1], (
                f"v{parsed.detail.ModelPackageVersion} accepted into Production; newest staging result: {newest}")
        self.collect()
        return result

    def result_event(self, index: int, *, healthy: bool, environment: str = "staging",
                     account: str = STAGING_ACCOUNT) -> dict[str, Any]:
        """A "Model Deployment Result" (the deployer's own ``result_detail``) as EventBridge delivers it
        (``account``: the sender's)."""
        self.clock += 1
        plan = {"endpoint_name": f"mlops-{environment}", "changed_variants": ["Champion"], "request": {
            "model_package_group": self.group, "model_package_arn": self.arns[index], "version": index + 1,
            "target_stage": STAGING, "reason": "promotion", "requested_by": "approver"}}
        detail = result_detail(plan=plan, environment=environment, outcome=DEPLOYED if healthy else FAILED,
                               health_check="passed" if healthy else "failed", reason="test",
                               deployed_at=f"2026-12-01T00:00:{self.clock:02d}.000000Z")
        return {"version": "0", "id": str(uuid.uuid4()), "source": RESULT_SOURCE, "detail-type": RESULT_DETAIL_TYPE,
                "account": account, "region": "eu-west-1", "resources": [self.arns[index]], "detail": detail}

    def deliver_result(self, event: dict[str, Any]) -> None:
        try:
            result = parse_result(event, group=self.group, servers=SERVERS)
        except RejectedEvent:
            assert (event["detail"]["environment"], event["account"]) != ("staging", STAGING_ACCOUNT)
            return
        with self.registry.acting_as(GATE):
            record_result(result, ledger=self.ledger, sagemaker_client=self.sagemaker)
        version = int(event["detail"]["version"])
        self.trusted.setdefault(version, []).append((str(event["detail"]["deployed_at"]),
                                                     event["detail"]["health_check"] == "passed"))

    def act(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "move":
            _, index, stage, approval = action
            self.sagemaker.update_model_package(
                ModelPackageArn=self.arns[index], ModelApprovalStatus=approval,
                ModelLifeCycle={"Stage": stage, "StageStatus": "Approved"},
            )
        elif kind == "advance":
            _, index = action
            package = self.sagemaker.describe_model_package(ModelPackageName=self.arns[index])
            stage = NEXT_STAGE.get(package.get("ModelLifeCycle", {}).get("Stage"), "Development")
            self.sagemaker.update_model_package(
                ModelPackageArn=self.arns[index], ModelApprovalStatus="Approved",
                ModelLifeCycle={"Stage": stage, "StageStatus": "Approved"},
            )
        elif kind == "happy_path":
            _, index, rng = action
            for step in (("advance", index), ("deliver_pending", rng), ("deploy_staging", index, True),
                         ("deploy_staging", index, False), ("deploy_staging", index, True),
                         ("deliver_results", rng, True),
                         ("deliver_pending", rng), ("advance", index)):
                self.act(step)
        elif kind == "deliver_pending":
            pending = [event for event in self.history if event["id"] not in self.delivered]
            action[1].shuffle(pending)
            for event in pending:
                self.deliver(event)
        elif kind == "deploy_staging":
            _, index, healthy = action
            record = self.ledger.package(index + 1)
            if record is None or record.stage != STAGING:
                return  # the deployer only deploys what the gate accepted into Staging
            self.results.append(self.result_event(index, healthy=healthy))  # reported, delivered later
            if healthy:
                return  # a pass waits for "deliver_results": a failure reported after it may overtake it
            self.deliver_result(self.results.pop())
        elif kind == "deliver_results":
            _, rng, again = action
            pending, self.results = self.results, []
            rng.shuffle(pending)
            for event in pending + (pending[:1] if again else []):
                self.deliver_result(event)
        elif kind == "forge":
            _, index, (environment, account) = action
            self.deliver_result(self.result_event(index, healthy=True, environment=environment, account=account))
        else:
            for pick in action[1]:
                if self.history:
                    self.deliver(self.history[pick % len(self.history)])
        self.collect()

    def registry_state(self) -> list[tuple[str, str, str]]:
        states = []
        for arn in self.arns:
            package = self.sagemaker.describe_model_package(ModelPackageName=arn)
            life_cycle = package.get("ModelLifeCycle", {})
            states.append((life_cycle.get("Stage"), life_cycle.get("StageStatus"), package["ModelApprovalStatus"]))
        return states


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, data=st.data())
def test_no_event_sequence_puts_an_unproven_package_into_production(
    promotion_aws: Any, actions: list[tuple[Any, ...]], data: st.DataObject  # noqa: F811
) -> None:
    registry, resources = promotion_aws
    world = World(registry, resources)
    for action in actions:
        world.act(action)
    world.act(("deliver_results", random.Random(0), False))  # every result reported so far arrives
    # Deliver everything not yet delivered, in an order hypothesis picks, until the gate stops reverting.
    while pending := [event for event in world.history if event["id"] not in world.delivered]:
        for event in data.draw(st.permutations(pending), label="delivery order"):
            world.deliver(event)

    final = world.registry_state()
    decisions = world.ledger.decisions()
    for index, (stage, stage_status, approval) in enumerate(final):
        version = index + 1
        record = world.ledger.package(version)
        assert record is not None
        assert (record.stage, record.stage_status, record.approval_status) == (stage, stage_status, approval)
        mine = [d for d in decisions if d.version == version]
        assert (mine[-1].resulting_stage, mine[-1].resulting_approval_status) == (stage, approval)
        if stage == PRODUCTION:
            count_case("a package ended in Production")
            accepted = [(d.from_stage, d.to_stage) for d in mine if d.outcome == ACCEPTED]
            assert ("Development", STAGING) in accepted
            assert (STAGING, PRODUCTION) in accepted
            assert record.staging_deployed  # a later (re)deployment's result may have failed since
    if world.production_acceptances:
        count_case("the gate accepted a Production promotion")

    # Duplicates are no-ops: every event ever sent, again.
    for event in list(world.history):
        assert world.deliver(event)["outcome"] == "no_change"
    assert world.registry_state() == final
    assert len(world.ledger.decisions()) == len(decisions)
