"""The promotion gate's environment, read once per execution environment through its contract
(mlsettings.functions.contracts.GateEnvironment, the class the registry stack writes it with)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlplatform.registry.deployment_results import StageServer, parse_servers
from mlplatform.registry.promotion_flow import GateSettings
from mlsettings.functions.contracts import GateEnvironment


@dataclass(frozen=True)
class GateRuntime:
    settings: GateSettings
    servers: dict[str, StageServer]
    protected_versions: int
    idempotency_table: str
    idempotency_ttl_seconds: int


def settings_from_environment(environment: Mapping[str, str]) -> GateRuntime:
    contract = GateEnvironment.from_env(environment)
    return GateRuntime(
        settings=GateSettings(model_package_group=contract.model_package_group, ledger_table=contract.ledger_table,
                              promotion_topic_arn=contract.promotion_topic_arn,
                              event_bus_name=contract.event_bus_name),
        servers=parse_servers(contract.stage_servers),
        protected_versions=contract.protected_production_versions,
        idempotency_table=contract.idempotency_table,
        idempotency_ttl_seconds=contract.idempotency_ttl_seconds,
    )
