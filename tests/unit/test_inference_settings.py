"""Environment parsing: defaults, derived values, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.inference.settings import InferenceSettings, SettingsError

REQUIRED = {"ENDPOINT_NAME": "ep", "DATA_SCHEMA_PATH": "schemas/s.json", "BREAKER_TABLE_NAME": "b",
            "RESPONSE_CACHE_TABLE_NAME": "c", "PREDICTION_LOG_STREAM_NAME": "f", "SAFE_DEFAULT_PROBABILITY": "0.2"}


def test_defaults_and_the_derived_trial_timeout() -> None:
    settings = InferenceSettings.from_environ({**REQUIRED, "LAMBDA_TASK_ROOT": "/var/task"})
    assert settings.data_schema_path == Path("/var/task/schemas/s.json")
    assert (settings.max_rows, settings.max_body_bytes, settings.endpoint_max_attempts) == (100, 262_144, 2)
    assert settings.breaker_trial_timeout_seconds == 2 * (1.0 + 2.0) + 1.0
    assert settings.fallback_model_bucket is None and settings.allow_unknown_categories


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ENDPOINT_NAME": ""}, "ENDPOINT_NAME is required"),
    ({"SAFE_DEFAULT_PROBABILITY": ""}, "SAFE_DEFAULT_PROBABILITY is required"),
    ({"SAFE_DEFAULT_PROBABILITY": "1.5"}, "SAFE_DEFAULT_PROBABILITY='1.5' is out of range"),
    ({"MAX_ROWS": "ten"}, "MAX_ROWS='ten' is not an integer"),
    ({"ENDPOINT_MAX_ATTEMPTS": "9"}, "ENDPOINT_MAX_ATTEMPTS='9' is out of range; allowed: [1, 5]"),
    ({"ALLOW_UNKNOWN_CATEGORIES": "maybe"}, "ALLOW_UNKNOWN_CATEGORIES='maybe' is not a flag"),
    ({"FALLBACK_MODEL_BUCKET": "b"}, "FALLBACK_MODEL_BUCKET and FALLBACK_MODEL_KEY must be set together"),
])
def test_bad_values_name_the_variable(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        InferenceSettings.from_environ({**REQUIRED, **overrides})
    assert message in str(caught.value)
