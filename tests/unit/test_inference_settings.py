"""Environment parsing: defaults, derived values, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.inference.settings import InferenceSettings, SettingsError

REQUIRED = {"ENDPOINT_NAME": "ep", "DATA_SCHEMA_PATH": "schemas/s.json", "BREAKER_TABLE_NAME": "b",
            "RESPONSE_CACHE_TABLE_NAME": "c", "PREDICTION_LOG_STREAM_NAME": "f", "SAFE_DEFAULT_PROBABILITY": "0.2",
            "ENDPOINT_CONNECT_TIMEOUT_SECONDS": "1", "ENDPOINT_READ_TIMEOUT_SECONDS": "2",
            "ENDPOINT_MAX_ATTEMPTS": "2", "BREAKER_FAILURE_THRESHOLD": "5", "BREAKER_COOLDOWN_SECONDS": "30",
            "RESPONSE_CACHE_TTL_SECONDS": "86400", "MAX_ROWS": "100", "MAX_BODY_BYTES": "65536"}


def test_defaults_and_the_derived_trial_timeout() -> None:
    settings = InferenceSettings.from_environ({**REQUIRED, "LAMBDA_TASK_ROOT": "/var/task"})
    assert settings.data_schema_path == Path("/var/task/schemas/s.json")
    assert (settings.max_rows, settings.max_body_bytes, settings.endpoint_max_attempts) == (100, 65_536, 2)
    assert settings.breaker_trial_timeout_seconds == 2 * (1.0 + 2.0) + 1.0
    assert settings.fallback_model_bucket is None and settings.allow_unknown_categories


def test_the_body_limit_has_no_default_of_its_own() -> None:
    """It was 262,144 bytes here and 65,536 in the configuration; now only the configuration says."""
    without = {k: v for k, v in REQUIRED.items() if k != "MAX_BODY_BYTES"}
    with pytest.raises(SettingsError, match="MAX_BODY_BYTES is required"):
        InferenceSettings.from_environ(without)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ENDPOINT_NAME": ""}, "ENDPOINT_NAME is required"),
    ({"SAFE_DEFAULT_PROBABILITY": ""}, "SAFE_DEFAULT_PROBABILITY is required"),
    ({"SAFE_DEFAULT_PROBABILITY": "1.5"}, "SAFE_DEFAULT_PROBABILITY is 1.5; allowed: a number from 0 to 1"),
    ({"MAX_ROWS": "ten"}, "MAX_ROWS is 'ten'"),
    ({"ENDPOINT_MAX_ATTEMPTS": "9"}, "ENDPOINT_MAX_ATTEMPTS is 9; allowed: a number from 1 to 5"),
    ({"ALLOW_UNKNOWN_CATEGORIES": "maybe"}, "ALLOW_UNKNOWN_CATEGORIES is 'maybe'"),
    ({"FALLBACK_MODEL_BUCKET": "b"}, "FALLBACK_MODEL_BUCKET and FALLBACK_MODEL_KEY must be set together"),
])
def test_bad_values_name_the_variable(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        InferenceSettings.from_environ({**REQUIRED, **overrides})
    assert message in str(caught.value)
