"""The metrics of one model's endpoint, by name: the model's dashboard and alarms (stacks/monitoring.py) and the
environment's overview (stacks/overview.py) read the same ones. Every dimension is a name derived from cdk.json
(the endpoint's), so the overview needs no reference to a model's stack."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch

from mlsettings.vocabulary import NAMESPACE, Metric, Service


def sagemaker_metric(endpoint: str, name: str, variant: str, statistic: str,
                     period_minutes: int = 5) -> cloudwatch.Metric:
    """SageMaker's own endpoint metric (AWS/SageMaker, by endpoint and variant)."""
    return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=name, statistic=statistic,
                             dimensions_map={"EndpointName": endpoint, "VariantName": variant},
                             period=cdk.Duration.minutes(period_minutes))


def drift_metric(endpoint: str, name: str, variant: str, statistic: str = "Maximum") -> cloudwatch.Metric:
    """What the daily drift and ground-truth run publishes per variant."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, statistic=statistic,
                             dimensions_map={Metric.ENDPOINT_DIMENSION: endpoint, Metric.VARIANT_DIMENSION: variant,
                                             "service": Service.DRIFT_MONITOR},
                             period=cdk.Duration.days(1))


def health_metric(endpoint: str, name: str, variant: str, statistic: str = "Minimum") -> cloudwatch.Metric:
    """What the scheduled health check publishes per variant (golden answers, the version served)."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, statistic=statistic,
                             dimensions_map={Metric.ENDPOINT_DIMENSION: endpoint, Metric.VARIANT_DIMENSION: variant},
                             period=cdk.Duration.minutes(5))


def inference_metric(endpoint: str, name: str, extra: dict[str, str] | None = None) -> cloudwatch.Metric:
    """What the inference API's function publishes for the endpoint it fronts."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, statistic="Sum",
                             dimensions_map={"service": Service.INFERENCE, Metric.ENDPOINT_DIMENSION: endpoint,
                                             **(extra or {})},
                             period=cdk.Duration.minutes(5))
