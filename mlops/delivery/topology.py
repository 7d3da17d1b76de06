"""The order in which a push to main deploys the environments, derived from cdk.json's topology.

Rules (docs/ACCOUNTS.md): a registry environment (it names itself in registry.registry_environment) comes
before the environments that deploy from it; among those, the one serving Production comes after the one
serving Staging of the same registry, so a change reaches production only after it deployed to staging (the
promotion order of the registry's stages, mlsettings.vocabulary.SERVABLE_STAGES). Environments with no such relation
deploy in parallel. The result is a list of steps in a stable topological order, each naming what it waits for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlsettings.config import EnvironmentConfig


@dataclass(frozen=True)
class DeployStep:
    environment: str
    needs: tuple[str, ...]
    reason: str


def _needs(config: EnvironmentConfig, configs: Mapping[str, EnvironmentConfig]) -> tuple[tuple[str, ...], str]:
    from mlsettings.vocabulary import SERVABLE_STAGES

    if config.is_registry:
        return (), "registry environment: holds the pipeline, the model package group, the gate and the ledger"
    registry = config.registry.registry_environment
    needs = [registry]
    reasons = [f"deploys from the registry in {registry}"]
    for stage in config.serving.served_stages:
        earlier = SERVABLE_STAGES[:SERVABLE_STAGES.index(stage)]
        for other in configs.values():
            if other.name != config.name and other.registry.registry_environment == registry and \
                    set(other.serving.served_stages) & set(earlier):
                needs.append(other.name)
                reasons.append(f"serves {stage}, after {other.name} which serves "
                               f"{', '.join(sorted(set(other.serving.served_stages) & set(earlier)))}")
    return tuple(dict.fromkeys(needs)), "; ".join(reasons)


def deploy_plan(configs: Mapping[str, EnvironmentConfig]) -> list[DeployStep]:
    """Every environment once, each after everything it needs (Kahn's algorithm; ties by registry first, then
    by the earliest stage served, then by name)."""
    from mlsettings.vocabulary import SERVABLE_STAGES

    def rank(name: str) -> tuple[int, int, str]:
        config = configs[name]
        stages = [SERVABLE_STAGES.index(s) for s in config.serving.served_stages]
        return (0 if config.is_registry else 1, min(stages, default=len(SERVABLE_STAGES)), name)

    needs = {name: _needs(config, configs) for name, config in configs.items()}
    done: list[DeployStep] = []
    placed: set[str] = set()
    while len(done) < len(configs):
        ready = sorted((name for name in configs if name not in placed and set(needs[name][0]) <= placed), key=rank)
        if not ready:  # mlsettings.config refuses registries that are not their own, so this cannot happen
            raise ValueError(f"the environments {sorted(set(configs) - placed)} wait for each other")
        for name in ready:
            done.append(DeployStep(environment=name, needs=needs[name][0], reason=needs[name][1]))
            placed.add(name)
    return done
