"""Judging a deployment in flight from DescribeEndpoint (and the rollback alarms). Pure.

Decisions the state machine branches on:
* ``wait``: still Creating/Updating/SystemUpdating/RollingBack and before the deadline;
* ``succeeded``: InService on the planned endpoint config with no rollback alarm in ALARM → verify;
* ``rolled_back``: InService but on another config — SageMaker's blue/green auto-rollback (an alarm fired
  during a bake step) or a failed update put the old fleet back;
* ``failed``: Failed (creation failed), UpdateRollbackFailed (the rollback itself failed: page), OutOfService,
  or InService on the new config while a rollback alarm is in ALARM (the alarm fired after the last bake:
  SageMaker no longer rolls back, so the deployment is recorded failed and on-call decides);
* ``timed_out``: still busy at the deadline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from mlplatform.serving.endpoint_state import UPDATE_ROLLBACK_FAILED

WAIT, SUCCEEDED, ROLLED_BACK, FAILED, TIMED_OUT = "wait", "succeeded", "rolled_back", "failed", "timed_out"
_IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def judge_endpoint(*, describe: Mapping[str, Any] | None, target_config: str, deadline: datetime, now: datetime,
                   alarms_in_alarm: Sequence[str] = ()) -> dict[str, Any]:
    """``describe`` is DescribeEndpoint's answer (None when the endpoint does not exist)."""
    if describe is None:
        return _verdict(FAILED, "(none)", "the endpoint does not exist (deleted during the deployment?)", now)
    status = str(describe.get("EndpointStatus", ""))
    serving_config = str(describe.get("EndpointConfigName", ""))
    failure = str(describe.get("FailureReason", "") or "")
    alarms = sorted(alarms_in_alarm)
    if status in _IN_PROGRESS:
        if now >= deadline:
            return _verdict(TIMED_OUT, status, f"still {status} at the deadline {deadline.isoformat()}", now,
                            alarms)
        note = "SageMaker is rolling back" if status == "RollingBack" else f"{status}"
        return _verdict(WAIT, status, note, now, alarms)
    if status == "InService":
        if serving_config != target_config:
            why = failure or (f"rollback alarm(s) {', '.join(alarms)}" if alarms else "no failure reason given")
            return _verdict(ROLLED_BACK, status, f"the endpoint serves {serving_config}, not {target_config}: "
                                                 f"rolled back ({why})", now, alarms)
        if alarms:
            return _verdict(FAILED, status, f"deployed, but rollback alarm(s) in ALARM: {', '.join(alarms)}", now,
                            alarms)
        return _verdict(SUCCEEDED, status, f"InService on {target_config}", now)
    if status == UPDATE_ROLLBACK_FAILED:
        return _verdict(FAILED, status, "the blue/green rollback itself failed; the endpoint needs an operator"
                        + (f" ({failure})" if failure else ""), now, alarms)
    return _verdict(FAILED, status, f"endpoint is {status}" + (f": {failure}" if failure else ""), now, alarms)


def _verdict(decision: str, status: str, reason: str, now: datetime, alarms: Sequence[str] = ()) -> dict[str, Any]:
    return {"decision": decision, "endpoint_status": status, "reason": reason, "checked_at": now.isoformat(),
            "alarms_in_alarm": list(alarms)}
