"""The inference Lambda's environment, parsed and checked once per execution environment.

A wrong value fails the cold start with the variable's name and the allowed range, instead of surfacing
as odd behaviour under load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable is missing or out of range; the message names it."""


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
        reader = _EnvReader(env)
        schema_path = Path(reader.text("DATA_SCHEMA_PATH"))
        if not schema_path.is_absolute():
            # Relative to the bundle root: Lambda's working directory is LAMBDA_TASK_ROOT, tests' is not.
            schema_path = (task_root or Path(env.get("LAMBDA_TASK_ROOT", "."))) / schema_path
        bucket = env.get("FALLBACK_MODEL_BUCKET") or None
        key = env.get("FALLBACK_MODEL_KEY") or None
        if (bucket is None) != (key is None):
            raise SettingsError(
                "FALLBACK_MODEL_BUCKET and FALLBACK_MODEL_KEY must be set together (or neither)")
        connect = reader.number("ENDPOINT_CONNECT_TIMEOUT_SECONDS", default=1.0, low=0.05, high=60.0)
        read = reader.number("ENDPOINT_READ_TIMEOUT_SECONDS", default=2.0, low=0.05, high=60.0)
        attempts = reader.integer("ENDPOINT_MAX_ATTEMPTS", default=2, low=1, high=5)
        return cls(
            endpoint_name=reader.text("ENDPOINT_NAME"),
            data_schema_path=schema_path,
            breaker_table_name=reader.text("BREAKER_TABLE_NAME"),
            response_cache_table_name=reader.text("RESPONSE_CACHE_TABLE_NAME"),
            prediction_log_stream_name=reader.text("PREDICTION_LOG_STREAM_NAME"),
            fallback_model_bucket=bucket,
            fallback_model_key=key,
            safe_default_probability=reader.number("SAFE_DEFAULT_PROBABILITY", low=0.0, high=1.0),
            decision_threshold=reader.number("DECISION_THRESHOLD", default=0.5, low=0.0, high=1.0),
            max_rows=reader.integer("MAX_ROWS", default=100, low=1, high=10_000),
            max_body_bytes=reader.integer("MAX_BODY_BYTES", default=262_144, low=1_024, high=6_000_000),
            allow_unknown_categories=reader.flag("ALLOW_UNKNOWN_CATEGORIES", default=True),
            endpoint_connect_timeout_seconds=connect,
            endpoint_read_timeout_seconds=read,
            endpoint_max_attempts=attempts,
            breaker_failure_threshold=reader.integer("BREAKER_FAILURE_THRESHOLD", default=5, low=1,
                                                     high=1_000),
            breaker_cooldown_seconds=reader.number("BREAKER_COOLDOWN_SECONDS", default=30.0, low=0.0,
                                                   high=3_600.0),
            breaker_state_cache_seconds=reader.number("BREAKER_STATE_CACHE_SECONDS", default=1.0, low=0.0,
                                                      high=60.0),
            # A trial holder that has not reported within the worst-case call time has died (for example
            # its Lambda timed out); after that the trial may be claimed again.
            breaker_trial_timeout_seconds=reader.number(
                "BREAKER_TRIAL_TIMEOUT_SECONDS", default=attempts * (connect + read) + 1.0, low=0.1,
                high=3_600.0),
            response_cache_ttl_seconds=reader.number("RESPONSE_CACHE_TTL_SECONDS", default=86_400.0, low=1.0,
                                                     high=366 * 86_400.0),
        )


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str) -> str:
        value = self._env.get(name, "").strip()
        if not value:
            raise SettingsError(f"environment variable {name} is required and must not be empty")
        return value

    def number(self, name: str, *, low: float, high: float, default: float | None = None) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            if default is None:
                raise SettingsError(f"environment variable {name} is required: a number in [{low}, {high}]")
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number; allowed: [{low}, {high}]") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise SettingsError(f"{name}={raw!r} is out of range; allowed: [{low}, {high}]")
        return value

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not an integer; allowed: [{low}, {high}]") from None
        if not low <= value <= high:
            raise SettingsError(f"{name}={raw!r} is out of range; allowed: [{low}, {high}]")
        return value

    def flag(self, name: str, *, default: bool) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("true", "1", "yes"):
            return True
        if raw in ("false", "0", "no"):
            return False
        raise SettingsError(f"{name}={raw!r} is not a flag; allowed: true or false")
