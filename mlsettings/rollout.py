"""Blue/green rollout timing: what the deployer asks SageMaker for and what the configuration must allow.

UpdateEndpoint's ``BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds`` takes 600-28,800 seconds (botocore's
shape), and the API reference says "the timeout value should be larger than the total waiting time specified in
TerminationWaitInSeconds and WaitIntervalInSeconds". The deployer (mlplatform/serving/deployment_plan.py) and the
configuration check (mlsettings/config/) both compute it here.
"""

from __future__ import annotations

import math

PROVISIONING_ALLOWANCE_SECONDS = 1800
"""Time SageMaker gets to provision a fleet, beyond the configured bake times."""
BLUE_GREEN_TIMEOUT_RANGE = (600, 28800)
"""MaximumExecutionTimeoutInSeconds limits (botocore: min 600, max 28800)."""
LINEAR_STEP_PERCENT_RANGE = (10, 50)
"""TrafficRoutingConfig.LinearStepSize: "Value must be 10-50% of the variant's total instance count"."""
CANARY_PERCENT_MAX = 50
"""TrafficRoutingConfig.CanarySize: "Value must be less than or equal to 50% of the variant's total instance
count"."""


def traffic_steps(strategy: str, step_percent: int) -> int:
    """Bake steps of a rollout: one for CANARY and ALL_AT_ONCE, one per linear step."""
    return math.ceil(100 / step_percent) if strategy == "LINEAR" else 1


def rollout_waits_seconds(*, strategy: str, step_percent: int, wait_minutes: int, termination_wait_minutes: int
                          ) -> int:
    """Provisioning allowance + every bake step + the old fleet's termination wait, unclamped."""
    return (PROVISIONING_ALLOWANCE_SECONDS + traffic_steps(strategy, step_percent) * wait_minutes * 60
            + termination_wait_minutes * 60)


def rollout_timeout_seconds(**rollout: int | str) -> int:
    """MaximumExecutionTimeoutInSeconds: the waits, within the API's range (the configuration refuses waits
    beyond its top, so clamping only ever raises a short rollout to the minimum)."""
    low, high = BLUE_GREEN_TIMEOUT_RANGE
    return max(low, min(high, rollout_waits_seconds(**rollout)))  # type: ignore[arg-type]
