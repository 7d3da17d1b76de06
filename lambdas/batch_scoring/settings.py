"""The batch scoring function's environment, parsed and checked once per execution environment."""

from __future__ import annotations

from collections.abc import Mapping

from mlplatform.serving.transform_job import BatchSettings


def settings_from_environment(environment: Mapping[str, str]) -> BatchSettings:
    missing = [n for n in ("ENDPOINT_NAME", "CAPTURE_BUCKET", "BATCH_INSTANCE_TYPE") if not environment.get(n)]
    if missing:
        raise RuntimeError(f"batch scoring misconfigured: environment variables {missing} are not set")
    count = environment.get("BATCH_INSTANCE_COUNT", "1")
    if not count.isdigit() or not 1 <= int(count) <= 100:
        raise RuntimeError(f"BATCH_INSTANCE_COUNT is {count!r}; allowed: an integer from 1 to 100")
    return BatchSettings(endpoint_name=environment["ENDPOINT_NAME"], capture_bucket=environment["CAPTURE_BUCKET"],
                         instance_type=environment["BATCH_INSTANCE_TYPE"],
                         kms_key_arn=environment.get("KMS_KEY_ARN", ""),
                         default_input_uri=environment.get("BATCH_INPUT_URI", ""), instance_count=int(count))
