"""One scheduled health-check run: every variant of the endpoint, with its own package's golden payloads.

What is judged depends on the endpoint's status:
* InService: every variant is probed; each gets a verdict (HealthCheckPassed 1 or 0).
* Creating/Updating/SystemUpdating/RollingBack/Deleting: skipped. During a blue/green shift the targeted
  variant may be answered by the new fleet while the endpoint config still names the old model, so the old
  model's golden payloads would fail a healthy rollout — and the health alarm may be one of the rollout's
  auto-rollback alarms. The deployer checks the new model itself once the update finished.
* Failed/UpdateRollbackFailed/OutOfService: every variant known from the endpoint config fails.
* No endpoint: skipped (nothing deployed yet in this environment).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from mlplatform.serving.endpoint_state import BUSY_STATUSES, IN_SERVICE, VARIANT_ORDER, read_endpoint_state
from mlplatform.serving.golden_check import GoldenPayloads, VariantVerdict
from mlplatform.serving.variant_probe import check_variant


@dataclass(frozen=True, kw_only=True)
class HealthReport:
    endpoint_name: str
    endpoint_status: str
    verdicts: tuple[VariantVerdict, ...] = ()
    skipped_reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.skipped_reason and all(verdict.passed for verdict in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "endpoint_status": self.endpoint_status,
            "skipped_reason": self.skipped_reason,
            "healthy": self.healthy,
            "variants": [verdict.to_dict() for verdict in self.verdicts],
        }


def _ordered(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: (VARIANT_ORDER.index(n) if n in VARIANT_ORDER else len(VARIANT_ORDER), n))


def run_health_check(*, sagemaker_client: Any, s3_client: Any, runtime_client: Any, endpoint_name: str,
                     golden_cache: MutableMapping[str, GoldenPayloads] | None = None) -> HealthReport:
    state = read_endpoint_state(sagemaker_client, endpoint_name)
    if state is None:
        return HealthReport(endpoint_name=endpoint_name, endpoint_status="(none)",
                            skipped_reason="endpoint does not exist (nothing deployed yet)")
    if state.status in BUSY_STATUSES:
        return HealthReport(endpoint_name=endpoint_name, endpoint_status=state.status,
                            skipped_reason=f"endpoint is {state.status}; the deployer verifies rollouts itself")
    names = _ordered(list(state.variants))
    if state.status != IN_SERVICE:
        reason = f"endpoint is {state.status}" + (f": {state.failure_reason}" if state.failure_reason else "")
        return HealthReport(endpoint_name=endpoint_name, endpoint_status=state.status, verdicts=tuple(
            VariantVerdict(variant=name, model_package_arn=state.variants[name].model_package_arn, error=reason)
            for name in names))
    verdicts = tuple(
        check_variant(sagemaker_client, s3_client, runtime_client, endpoint_name=endpoint_name, variant=name,
                      model_package_arn=state.variants[name].model_package_arn, cache=golden_cache)
        for name in names)
    return HealthReport(endpoint_name=endpoint_name, endpoint_status=state.status, verdicts=verdicts)
