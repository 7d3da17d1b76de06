"""The inference Lambda's environment, read once per execution environment through its contract
(mlsettings.functions.contracts.InferenceEnvironment, the class the inference API stack writes it with).

A wrong value fails the cold start with the variable's name and the allowed range, instead of surfacing as odd
behaviour under load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlsettings.functions.base import EnvironmentSettingError
from mlsettings.functions.contracts import InferenceEnvironment

SettingsError = EnvironmentSettingError


@dataclass(frozen=True, kw_only=True)
class InferenceSettings:
    endpoint_name: str
    data_schema_path: Path
    breaker_table_name: str
    response_cache_table_name: str
    prediction_log_stream_name: str
    fallback_model_bucket: str | None
    fallback_model_key: str | None
    safe_default_probability: float
    decision_threshold: float
    max_rows: int
    max_body_bytes: int
    allow_unknown_categories: bool
    endpoint_connect_timeout_seconds: float
    endpoint_read_timeout_seconds: float
    endpoint_max_attempts: int
    breaker_failure_threshold: int
    breaker_cooldown_seconds: float
    breaker_state_cache_seconds: float
    breaker_trial_timeout_seconds: float
    response_cache_ttl_seconds: float

    @classmethod
    def from_environ(cls, env: Mapping[str, str], *, task_root: Path | None = None) -> InferenceSettings:
        read = InferenceEnvironment.from_env(env)
        schema_path = Path(read.data_schema_path)
        if not schema_path.is_absolute():
            # Relative to the bundle root: Lambda's working directory is LAMBDA_TASK_ROOT, tests' is not.
            schema_path = (task_root or Path(env.get("LAMBDA_TASK_ROOT", "."))) / schema_path
        connect, call = read.endpoint_connect_timeout_seconds, read.endpoint_read_timeout_seconds
        # A trial holder that has not reported within the worst-case call time has died (for example its Lambda
        # timed out); after that the trial may be claimed again.
        trial = read.breaker_trial_timeout_seconds or read.endpoint_max_attempts * (connect + call) + 1.0
        return cls(
            endpoint_name=read.endpoint_name, data_schema_path=schema_path,
            breaker_table_name=read.breaker_table_name, response_cache_table_name=read.response_cache_table_name,
            prediction_log_stream_name=read.prediction_log_stream_name,
            fallback_model_bucket=read.fallback_model_bucket, fallback_model_key=read.fallback_model_key,
            safe_default_probability=read.safe_default_probability, decision_threshold=read.decision_threshold,
            max_rows=read.max_rows, max_body_bytes=read.max_body_bytes,
            allow_unknown_categories=read.allow_unknown_categories, endpoint_connect_timeout_seconds=connect,
            endpoint_read_timeout_seconds=call, endpoint_max_attempts=read.endpoint_max_attempts,
            breaker_failure_threshold=read.breaker_failure_threshold,
            breaker_cooldown_seconds=read.breaker_cooldown_seconds,
            breaker_state_cache_seconds=read.breaker_state_cache_seconds, breaker_trial_timeout_seconds=trial,
            response_cache_ttl_seconds=read.response_cache_ttl_seconds)
