"""The deployer's environment, parsed and checked once per execution environment (into the domain's
``DeployerSettings``; see ``mlplatform/serving/deployment_settings.py`` for the settings' format).

Only the keys the deployer uses are read; a missing or mistyped one fails the cold start with its name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlplatform.serving.deployment_settings import (
    DEFAULT_FALLBACK_MODEL_KEY,
    DeployerSettings,
    SettingsError,
    parse_serving,
)
from mlsettings.vocabulary import PRODUCTION, STAGING


def _json(environment: Mapping[str, str], name: str, default: str | None = None) -> Any:
    text = environment.get(name) or default
    if text is None:
        raise SettingsError(f"environment variable {name} is required (JSON)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"environment variable {name} is not valid JSON ({err.msg})") from None


def settings_from_environment(environment: Mapping[str, str]) -> DeployerSettings:
    required = ("ENVIRONMENT_NAME", "ENDPOINT_NAME", "MODEL_PACKAGE_GROUP",
                "MODEL_EXECUTION_ROLE_ARN", "CAPTURE_DESTINATION_URI", "ARTIFACT_BUCKET", "SERVING_SETTINGS")
    missing = [name for name in required if not environment.get(name)]
    if missing:
        raise SettingsError(f"deployer misconfigured: environment variables {missing} are not set")
    capture = environment["CAPTURE_DESTINATION_URI"].rstrip("/")
    if not capture.startswith("s3://"):
        raise SettingsError(f"CAPTURE_DESTINATION_URI is {capture!r}; expected an s3:// URI")
    alarms = _json(environment, "ROLLBACK_ALARM_NAMES", "[]")
    if not isinstance(alarms, list) or not all(isinstance(a, str) and a for a in alarms):
        raise SettingsError("ROLLBACK_ALARM_NAMES must be a JSON list of alarm names")
    vpc = _json(environment, "VPC_CONFIG", "null")
    if vpc is not None and (not isinstance(vpc, dict) or not vpc.get("Subnets")
                            or not vpc.get("SecurityGroupIds")):
        raise SettingsError("VPC_CONFIG must be null or {\"Subnets\": [...], \"SecurityGroupIds\": [...]}")
    stages = tuple(s.strip() for s in environment.get("SERVED_STAGES", "").split(",") if s.strip())
    unknown = [s for s in stages if s not in (STAGING, PRODUCTION)]
    if unknown:  # empty is allowed: other environments may deploy every stage
        raise SettingsError(f"SERVED_STAGES has {unknown}; allowed: Staging, Production (comma-separated)")
    poll = environment.get("POLL_SECONDS", "60")
    if not poll.isdigit() or not 10 <= int(poll) <= 600:
        raise SettingsError(f"POLL_SECONDS is {poll!r}; allowed: an integer from 10 to 600")
    serving = _json(environment, "SERVING_SETTINGS")
    if not isinstance(serving, dict):
        raise SettingsError("SERVING_SETTINGS must be a JSON object")
    return DeployerSettings(
        environment_name=environment["ENVIRONMENT_NAME"],
        endpoint_name=environment["ENDPOINT_NAME"],
        model_package_group=environment["MODEL_PACKAGE_GROUP"],
        served_stages=stages,
        execution_role_arn=environment["MODEL_EXECUTION_ROLE_ARN"],
        capture_destination_uri=capture,
        kms_key_arn=environment.get("KMS_KEY_ARN", ""),
        artifact_bucket=environment["ARTIFACT_BUCKET"],
        fallback_model_key=environment.get("FALLBACK_MODEL_KEY") or DEFAULT_FALLBACK_MODEL_KEY,
        rollback_alarm_names=tuple(alarms),
        serving=parse_serving(serving),
        vpc_config=vpc,
        poll_seconds=int(poll),
        event_bus_name=environment.get("EVENT_BUS_NAME") or "default",
    )
