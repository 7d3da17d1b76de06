"""A/B statistics: quality comparison, bootstrap intervals, error-rate test, the recommendation rules, and
the CloudWatch query (Stubber: moto's get_metric_data crashes on percentile statistics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.stub import ANY, Stubber

from mlcore.ab_testing import bootstrap_interval, compare_error_rates, compare_quality
from mlops.serving_ops import (
    KEEP_TESTING,
    PROMOTE,
    STOP,
    prediction_distribution,
    recommend,
    variant_traffic,
)


def _sample(n: int, separation: float, seed: int) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = 1 / (1 + np.exp(-(separation * (labels * 2 - 1) + rng.normal(0, 1, n))))
    return labels.tolist(), scores.tolist()


def test_a_clearly_better_challenger_is_significant_and_an_equal_one_is_not() -> None:
    champion, better, same = _sample(800, 0.6, 1), _sample(800, 2.0, 2), _sample(800, 0.6, 3)
    clear = compare_quality(champion, better)
    assert clear["metric"] == "auc" and clear["difference"] > 0.1 and clear["significant"]
    assert not compare_quality(champion, same)["significant"]


def test_one_class_falls_back_to_accuracy_with_fishers_test() -> None:
    result = compare_quality(([1] * 50, [0.9] * 50), ([1] * 50, [0.9] * 40 + [0.1] * 10))
    assert result["metric"] == "accuracy" and result["test"] == "fisher_exact"
    assert result["champion"] == 1.0 and result["challenger"] == 0.8 and result["significant"]


def test_bootstrap_interval_brackets_the_metric() -> None:
    labels, scores = _sample(400, 1.0, 4)
    low, high = bootstrap_interval(labels, scores, "auc", samples=300)
    from mlcore.metrics import roc_auc

    assert low < roc_auc(np.asarray(labels), np.asarray(scores)) < high < 1.0


def _traffic(requests: float, errors: float, p99: float | None = 50.0) -> dict[str, Any]:
    return {"requests": requests, "errors_5xx": errors, "error_rate": errors / requests if requests else None,
            "latency_p99_ms": p99}


def test_recommendations() -> None:
    good = {"metric": "auc", "champion": 0.90, "challenger": 0.95, "difference": 0.05, "p_value": 0.001,
            "test": "z", "significant": True}
    worse = {**good, "challenger": 0.85, "difference": -0.05}
    unclear = {**good, "p_value": 0.4, "significant": False}
    traffic = {"Champion": _traffic(9000, 9), "Challenger": _traffic(1000, 1)}
    labelled = {"Champion": 500, "Challenger": 500}
    errors = compare_error_rates(traffic["Champion"], traffic["Challenger"])
    assert errors is not None and not errors["significant"]

    def decide(**change: Any) -> str:
        arguments: dict[str, Any] = {"traffic": traffic, "quality": good, "labelled": labelled,
                                     "error_comparison": errors, "sla_p99_ms": 150.0, "min_labelled": 100, **change}
        return recommend(**arguments)["recommendation"]

    assert decide() == PROMOTE
    assert decide(quality=worse) == STOP
    assert decide(quality=unclear) == KEEP_TESTING
    assert decide(labelled={"Champion": 500, "Challenger": 20}) == KEEP_TESTING
    assert decide(quality=None) == KEEP_TESTING
    slow = {**traffic, "Challenger": _traffic(1000, 1, p99=400.0)}
    assert decide(traffic=slow) == STOP
    failing = {**traffic, "Challenger": _traffic(1000, 60)}
    failing_errors = compare_error_rates(failing["Champion"], failing["Challenger"])
    assert failing_errors is not None and failing_errors["significant"]
    assert decide(traffic=failing, error_comparison=failing_errors) == STOP
    assert decide(traffic={"Champion": traffic["Champion"]}) == KEEP_TESTING


def test_prediction_distribution() -> None:
    summary = prediction_distribution([0.1, 0.2, 0.8, 0.9])
    assert summary["rows"] == 4 and summary["positive_rate"] == 0.5 and sum(summary["histogram"]) == 4
    assert prediction_distribution([]) == {"rows": 0}


def test_variant_traffic_reads_one_window_wide_period_per_statistic() -> None:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    end = datetime(2026, 1, 2, tzinfo=UTC)
    results = [{"Id": "v0_invocations", "Values": [1000.0], "StatusCode": "Complete"},
               {"Id": "v0_errors_5xx", "Values": [5.0], "StatusCode": "Complete"},
               {"Id": "v0_latency_p50", "Values": [12000.0], "StatusCode": "Complete"},
               {"Id": "v0_latency_p99", "Values": [80000.0], "StatusCode": "Complete"},
               {"Id": "v1_invocations", "Values": [], "StatusCode": "Complete"}]
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": results},
                          {"MetricDataQueries": ANY, "StartTime": end - timedelta(hours=24), "EndTime": end})
        traffic = variant_traffic(client, endpoint="mlops-prod", variants=["Champion", "Challenger"],
                                  start=end - timedelta(hours=24), end=end)
    assert traffic["Champion"] == {"requests": 1000.0, "errors_5xx": 5.0, "errors_4xx": 0.0, "error_rate": 0.005,
                                   "latency_p50_ms": 12.0, "latency_p99_ms": 80.0}
    assert traffic["Challenger"]["requests"] == 0.0 and traffic["Challenger"]["error_rate"] is None


@pytest.mark.parametrize("percent", [-1, 101])
def test_shift_weights_refuses_out_of_range_shares(percent: int) -> None:
    from mlops.errors import OperatorError
    from mlops.serving_ops import shift_weights

    with pytest.raises(OperatorError, match="0 to 100"):
        shift_weights(None, endpoint="e", challenger_percent=percent)
