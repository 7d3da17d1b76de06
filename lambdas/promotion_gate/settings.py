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
    group_prefix: str
    ledger_table: str
    promotion_topic_arn: str
    event_bus_name: str
    servers: dict[str, StageServer]
    protected_versions: int
    idempotency_table: str
    idempotency_ttl_seconds: int

    def settings_for(self, group: object) -> GateSettings:
        """The judgement's settings for an event's group: one of this registry's models', else ``ForeignGroup``."""
        model = group[len(self.group_prefix):] if isinstance(group, str) and group.startswith(self.group_prefix) \
            else ""
        if not model:
            raise ForeignGroup(f"model package group {group!r} is not one of this registry's (they start with "
                               f"{self.group_prefix!r})")
        return GateSettings(model_package_group=str(group), model=model, ledger_table=self.ledger_table,
                            promotion_topic_arn=self.promotion_topic_arn, event_bus_name=self.event_bus_name)


class ForeignGroup(ValueError):
    """An event of a group this gate does not guard."""


def settings_from_environment(environment: Mapping[str, str]) -> GateRuntime:
    contract = GateEnvironment.from_env(environment)
    return GateRuntime(
        group_prefix=contract.group_prefix, ledger_table=contract.ledger_table,
        promotion_topic_arn=contract.promotion_topic_arn, event_bus_name=contract.event_bus_name,
        servers=parse_servers(contract.stage_servers),
        protected_versions=contract.protected_production_versions,
        idempotency_table=contract.idempotency_table,
        idempotency_ttl_seconds=contract.idempotency_ttl_seconds,
    )
