"""The serving world as the stacks build it: names, and the deployer's environment through its contract.

Shared by the serving tests and ``bench/bench_serving.py``; the values are a dev environment's.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from mlsettings.naming import ModelPrefixes, model_prefixes
from mlsettings.vocabulary import PRODUCTION, STAGING, Published

REGION = "us-east-1"
ACCOUNT = "123456789012"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
GROUP = "mlops-dev-models"
MODEL = "breast-cancer"  # a model of the default cdk.json (the serving world trains breast-cancer data)
ENDPOINT = "mlops-dev"
ARTIFACT_BUCKET = "mlops-dev-artifacts"
CAPTURE_BUCKET = "mlops-dev-capture"
LEDGER = "ledger"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-endpoint"
KMS = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


@cache
def model_prefixes_of_model() -> ModelPrefixes:
    """MODEL's prefixes in the shared buckets (mlsettings.naming.model_prefixes of dev's view of MODEL): where the
    pipeline writes its artifacts and the deployer its fallback model; a model's roles reach only these."""
    from mlsettings.config import load_environments, project_context

    return model_prefixes(load_environments(project_context())["dev"].for_model(MODEL))


def serving_settings(*, challenger: bool = True, strategy: str = "CANARY", instance_type: str = "ml.m5.large",
                     challenger_weight: int = 10) -> dict[str, Any]:
    variant = {"instance_type": instance_type, "min_instances": 2, "max_instances": 4}
    return {"sla": {"p99_latency_ms": 150.0, "peak_requests_per_second": 100.0, "availability_percent": 99.9},
            "champion": dict(variant), "challenger_enabled": challenger, "challenger": dict(variant),
            "challenger_weight_percent": challenger_weight,
            "deployment": {"strategy": strategy, "canary_percent": 10, "wait_minutes": 10,
                           "termination_wait_minutes": 5},
            "capture_sampling_percent": 100, "network_isolation": True, "batch_instance_type": "ml.m5.xlarge",
            "batch_schedule": None, "health_check_schedule": "rate(5 minutes)"}


def deployer_environment(**serving: Any) -> dict[str, str]:
    """The deployer's environment through its contract (as the serving stack writes it), serving both stages so
    one world can promote through both."""
    from mlsettings.functions.contracts import DeployerEnvironment

    return DeployerEnvironment(
        environment_name="dev", endpoint_name=ENDPOINT, model_package_group=GROUP, event_bus_name="default",
        served_stages=(STAGING, PRODUCTION), model_execution_role_arn=ROLE,
        capture_destination_uri=f"s3://{CAPTURE_BUCKET}/endpoint", artifact_bucket=ARTIFACT_BUCKET, kms_key_arn=KMS,
        rollback_alarm_names=("mlops-dev-Champion-5xx", "mlops-dev-Champion-p99", "mlops-dev-Challenger-5xx",
                              "mlops-dev-Challenger-p99"),
        serving_settings=serving_settings(**serving), vpc_config=None,
        variant_parameter_prefix=Published.variant_prefix("dev", MODEL),
        result_parameter_prefix=Published.deployer_prefix("dev", MODEL),
        fallback_model_key=model_prefixes_of_model().fallback_model_key).to_env()


