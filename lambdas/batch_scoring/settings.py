"""The batch scoring function's environment, read once per execution environment through its contract
(mlsettings.functions.contracts.BatchScoringEnvironment, the class the serving stack writes it with)."""

from __future__ import annotations

from collections.abc import Mapping

from mlplatform.serving.transform_job import BatchSettings
from mlsettings.functions.contracts import BatchScoringEnvironment


def settings_from_environment(environment: Mapping[str, str]) -> BatchSettings:
    contract = BatchScoringEnvironment.from_env(environment)
    return BatchSettings(endpoint_name=contract.endpoint_name, capture_bucket=contract.capture_bucket,
                         instance_type=contract.batch_instance_type, kms_key_arn=contract.kms_key_arn,
                         default_input_uri=contract.batch_input_uri, instance_count=contract.batch_instance_count,
                         batch_prefix=contract.batch_prefix)
