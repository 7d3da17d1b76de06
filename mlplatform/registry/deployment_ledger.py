"""The deployment ledger: every promotion decision and every deployment of one model package group.

One DynamoDB table (partition key ``pk``, sort key ``sk``, both strings; no GSI) holds, per group
(``pk = GROUP#<group>``):

* ``sk = PACKAGE#<version:010d>``: the gate's *restore point* for one package — the stage, stage status
  and approval status it last accepted — plus what the deployers recorded (``staging_deployed``,
  ``staging_health_check``), everything needed to redeploy it (package ARN, model data URL, image), the
  ``protected`` flag and a ``revision`` counter used for optimistic locking.
* ``sk = DECISION#<decided_at>#<version>#<revision>``: one row per gate decision or operator request.
* ``sk = DEPLOYMENT#<stage>#<deployed_at>#<version>``: one row per deployment a deployer performed.

Everything lives in the group's partition because every read is "this group, newest first" and the volume
is a few writes a day. No row carries a TTL: the ledger keeps every decision and every production
deployment. Timestamps are ISO 8601 UTC with microseconds so that the sort key orders them.

Used by the promotion-gate Lambda, the serving deployer and the ``mlops`` CLI, so this module imports
nothing from the CLI and takes its DynamoDB client as an argument.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from mlsettings.vocabulary import (
    DEVELOPMENT,
    PENDING_MANUAL_APPROVAL,
    PRODUCTION,
    STAGING,
    STATUS_PENDING_APPROVAL,
)

# --- the stage vocabulary shared by the gate, the deployers and the CLI -----------------------------------
STAGE_ORDER: tuple[str, ...] = (DEVELOPMENT, STAGING, PRODUCTION)

APPROVED = "Approved"
PENDING = PENDING_MANUAL_APPROVAL

# StageStatus is free text in the API (pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}); these are ours.
STATUS_APPROVED = "Approved"  # written by the approver (Studio) or `mlops promote`

# Decision outcomes
ACCEPTED = "accepted"  # a promotion the gate let through (an event was emitted)
REVERTED = "reverted"  # a change the gate undid (an alert was published)
RECORDED = "recorded"  # a legal change that needs no deployment (registration, rejection, status update)
ROLLBACK_REQUESTED = "rollback_requested"  # `mlops rollback`

# How many production versions are protected by default: the current one and the two before it
# (registry.protected_production_versions in cdk.json; at least 3, so two rollback targets always exist).
PROTECTED_PRODUCTION_VERSIONS = 3

DEPLOYED = "deployed"
FAILED = "failed"
HEALTH_PASSED = "passed"
HEALTH_FAILED = "failed"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class LedgerConflict(Exception):
    """Another writer changed the package's ledger record since we read it: re-read and decide again."""


def utc_timestamp(moment: datetime | None = None) -> str:
    """Sortable ISO 8601 UTC text with microseconds (the sort keys rely on it being fixed width)."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, kw_only=True)
class PackageRecord:
    """The gate's restore point for one package version, plus deployment evidence and redeploy data."""

    version: int
    model_package_arn: str = ""
    stage: str = DEVELOPMENT
    stage_status: str = STATUS_PENDING_APPROVAL
    approval_status: str = PENDING
    staging_deployed: bool = False
    staging_health_check: str = ""
    staging_result_at: str = ""  # deployed_at of the newest staging result recorded (orders late deliveries)
    production_result_at: str = ""
    model_data_url: str = ""
    image: str = ""
    protected: bool = False
    revision: int = 0


@dataclass(frozen=True, kw_only=True)
class DecisionRecord:
    decided_at: str
    actor: str
    version: int
    model_package_arn: str
    from_stage: str
    to_stage: str
    outcome: str
    reason: str
    resulting_stage: str
    resulting_approval_status: str
    event_id: str = ""
    revision: int = 0


@dataclass(frozen=True, kw_only=True)
class DeploymentRecord:
    deployed_at: str
    version: int
    stage: str
    outcome: str
    health_check: str
    model_package_arn: str
    model_data_url: str
    image: str
    reason: str
    actor: str


@dataclass(frozen=True)
class RetainedProduction:
    """Production versions newest first: ``current`` and the ``previous`` ones rollback may target."""

    current: DeploymentRecord | None
    previous: tuple[DeploymentRecord, ...] = field(default_factory=tuple)

    @property
    def rollback_versions(self) -> tuple[int, ...]:
        return tuple(record.version for record in self.previous)


def _to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _serializer.serialize(value) for key, value in values.items() if value is not None}


def _from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
    # DynamoDB numbers come back as Decimal; every number we store is an integer.
    return {key: int(value) if type(value).__name__ == "Decimal" else value for key, value in plain.items()}


def _build(record_type: Any, values: Mapping[str, Any]) -> Any:
    names = {f.name for f in fields(record_type)}
    return record_type(**{key: value for key, value in values.items() if key in names})


class DeploymentLedger:
    """Reads and writes one group's ledger rows. ``clock`` is injectable so tests can order rows."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        model_package_group: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        protected_versions: int = PROTECTED_PRODUCTION_VERSIONS,
    ) -> None:
        if protected_versions < PROTECTED_PRODUCTION_VERSIONS:
            raise ValueError(f"protected_versions is {protected_versions}; at least {PROTECTED_PRODUCTION_VERSIONS}")
        self._protected_versions = protected_versions
        self._client = dynamodb_client
        self._table = table_name
        self._group = model_package_group
        self._clock = clock

    @property
    def partition(self) -> str:
        return f"GROUP#{self._group}"

    def now(self) -> str:
        return utc_timestamp(self._clock())

    # --- package restore points ---------------------------------------------------------------------------
    def package(self, version: int) -> PackageRecord | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=_to_item({"pk": self.partition, "sk": f"PACKAGE#{version:010d}"}),
            ConsistentRead=True,
        )
        if "Item" not in response:
            return None
        record: PackageRecord = _build(PackageRecord, _from_item(response["Item"]))
        return record

    def packages(self) -> list[PackageRecord]:
        return [_build(PackageRecord, item) for item in self._query("PACKAGE#", newest_first=False)]

    def record_decision(
        self, decision: DecisionRecord, package: PackageRecord, expected_revision: int
    ) -> None:
        """Write the decision row and the package's new restore point atomically.

        The package write is conditional on ``expected_revision`` so two gate invocations judging the same
        package concurrently cannot both win: the loser gets ``LedgerConflict`` and is retried.
        """
        package_item: dict[str, Any] = {
            "pk": self.partition,
            "sk": f"PACKAGE#{package.version:010d}",
            "kind": "package",
        }
        package_item.update(asdict(package))
        package_item["revision"] = expected_revision + 1
        decision_item: dict[str, Any] = {
            "pk": self.partition,
            "sk": f"DECISION#{decision.decided_at}#{decision.version:010d}#{expected_revision + 1:06d}",
            "kind": "decision",
        }
        decision_item.update(asdict(decision))
        decision_item["revision"] = expected_revision + 1
        condition = (
            {"ConditionExpression": "attribute_not_exists(pk)"}
            if expected_revision == 0
            else {
                "ConditionExpression": "revision = :expected",
                "ExpressionAttributeValues": _to_item({":expected": expected_revision}),
            }
        )
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": self._table, "Item": _to_item(package_item), **condition}},
                    {"Put": {"TableName": self._table, "Item": _to_item(decision_item)}},
                ]
            )
        except self._client.exceptions.TransactionCanceledException as err:
            raise LedgerConflict(
                f"ledger record of {self._group} v{package.version} changed since revision "
                f"{expected_revision}"
            ) from err

    def append_decision(self, decision: DecisionRecord) -> None:
        """A decision that changes no restore point (operator requests such as rollback)."""
        item = {
            "pk": self.partition,
            "sk": f"DECISION#{decision.decided_at}#{decision.version:010d}#{uuid.uuid4().hex[:6]}",
            "kind": "decision",
        }
        item.update(asdict(decision))
        self._client.put_item(TableName=self._table, Item=_to_item(item))

    def recent_decisions(self, limit: int = 10) -> list[DecisionRecord]:
        rows = self._query("DECISION#", newest_first=True, limit=limit)
        return [_build(DecisionRecord, item) for item in rows]

    def decisions(self) -> list[DecisionRecord]:
        """Every decision, oldest first."""
        return [_build(DecisionRecord, item) for item in self._query("DECISION#", newest_first=False)]

    # --- deployments (written by the serving deployer) -----------------------------------------------------
    def record_deployment(self, deployment: DeploymentRecord) -> bool:
        """Append a deployment row and update the package's evidence (and protection, for production); True
        when this is the newest result for the package and stage (by ``deployed_at``), False when a newer one
        is recorded already (the row is kept as history, the evidence is not touched).

        A staging deployment sets ``staging_deployed``/``staging_health_check`` on the package record: the
        gate reads those (never the registry's StageStatus) before letting a package into Production.
        Bumping ``revision`` makes a gate decision racing with this write retry and see the new evidence.
        The same result recorded twice is newest both times (``<=``): a retried recording finishes its work.
        """
        item = {
            "pk": self.partition,
            "sk": f"DEPLOYMENT#{deployment.stage}#{deployment.deployed_at}#{deployment.version:010d}",
            "kind": "deployment",
        }
        item.update(asdict(deployment))
        self._client.put_item(TableName=self._table, Item=_to_item(item))
        evidence: dict[str, Any] = {
            ":arn": deployment.model_package_arn,
            ":url": deployment.model_data_url,
            ":image": deployment.image,
            ":one": 1,
            ":zero": 0,
            ":development": DEVELOPMENT,
            ":pending_status": STATUS_PENDING_APPROVAL,
            ":pending": PENDING,
            ":version": deployment.version,
        }
        assignments = [
            "model_package_arn = :arn",
            "model_data_url = :url",
            "image = :image",
            "revision = if_not_exists(revision, :zero) + :one",
            # A deployer may write before the gate ever saw the package: give it the registration baseline.
            "stage = if_not_exists(stage, :development)",
            "stage_status = if_not_exists(stage_status, :pending_status)",
            "approval_status = if_not_exists(approval_status, :pending)",
            "version = :version",
            f"{deployment.stage.lower()}_result_at = :at",
        ]
        evidence[":at"] = deployment.deployed_at
        if deployment.stage == STAGING:
            assignments += ["staging_deployed = :deployed", "staging_health_check = :health"]
            evidence[":deployed"] = deployment.outcome == DEPLOYED
            evidence[":health"] = deployment.health_check
        newest_key = f"{deployment.stage.lower()}_result_at"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_to_item({"pk": self.partition, "sk": f"PACKAGE#{deployment.version:010d}"}),
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression=f"attribute_not_exists({newest_key}) OR {newest_key} <= :at",
                ExpressionAttributeValues=_to_item(evidence),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        if deployment.stage == PRODUCTION and deployment.outcome == DEPLOYED:
            self._refresh_protection()
        return True

    def deployments(self, stage: str) -> list[DeploymentRecord]:
        """Deployments to ``stage``, newest first."""
        rows = self._query(f"DEPLOYMENT#{stage}#", newest_first=True)
        return [_build(DeploymentRecord, item) for item in rows]

    def retained_production(self) -> RetainedProduction:
        """The current production version and the distinct versions deployed before it (``protected_versions``
        in all: by default the current one and two before it).

        Derived from successful production deployments (rollbacks included), newest first; a version
        deployed twice counts once, at its latest deployment.
        """
        distinct: list[DeploymentRecord] = []
        for record in self.deployments(PRODUCTION):
            if record.outcome == DEPLOYED and all(seen.version != record.version for seen in distinct):
                distinct.append(record)
            if len(distinct) == self._protected_versions:
                break
        if not distinct:
            return RetainedProduction(current=None)
        return RetainedProduction(current=distinct[0], previous=tuple(distinct[1:]))

    def _refresh_protection(self) -> None:
        """Mark exactly the retained production versions ``protected`` (with their redeploy data)."""
        retained = self.retained_production()
        keep = {record.version for record in (retained.current, *retained.previous) if record is not None}
        for package in self.packages():
            if package.protected != (package.version in keep):
                self._client.update_item(
                    TableName=self._table,
                    Key=_to_item({"pk": self.partition, "sk": f"PACKAGE#{package.version:010d}"}),
                    UpdateExpression="SET protected = :flag",
                    ExpressionAttributeValues=_to_item({":flag": package.version in keep}),
                )

    # --- plumbing ------------------------------------------------------------------------------------------
    def _query(
        self, prefix: str, *, newest_first: bool, limit: int | None = None
    ) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": _to_item({":pk": self.partition, ":prefix": prefix}),
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        returned = 0
        while True:
            if limit is not None:
                request["Limit"] = limit - returned
            page = self._client.query(**request)
            for item in page.get("Items", []):
                returned += 1
                yield _from_item(item)
            if "LastEvaluatedKey" not in page or (limit is not None and returned >= limit):
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
