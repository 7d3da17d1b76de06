"""What `mlops promote-challenger`, `shift-weights`, `ab-report` and `batch-score` do, over boto3 clients.

* promote-challenger: asks the serving deployer to swap roles (the "Model Promotion Accepted" event with
  ``reason="challenger_swap"``); the normal safe deployment (blue/green, health check, ledger) does it, so
  the variant names — and every alarm and dashboard keyed on them — stay stable.
* shift-weights: UpdateEndpointWeightsAndCapacities, no redeploy. The endpoint config keeps the configured
  weights, so the next deployment resets them (a new Challenger always starts at the configured share).
* ab-report: per variant traffic, latency, errors (CloudWatch ``AWS/SageMaker``), the prediction
  distribution (data capture, ``mlcore.drift.capture``) and — with ground truth — the quality metric with bootstrap
  confidence intervals and a significance test, then a recommendation with the numbers behind it.

Ground truth is read exactly as the drift monitor's quality join reads it
(``mlcore.drift.ground_truth``: CSV or JSON Lines label files under the ground-truth prefix,
``{"inference_id": …, "label": …, "row": optional}``, labels spelled as the schema's label).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlcore.ab_testing import compare_error_rates, compare_variants, variant_quality
from mlcore.drift.capture import CaptureFormatError, parse_capture_line
from mlcore.drift.ground_truth import LabelSet, QualityJoin, read_labels
from mlcore.outputs import summarise_answers
from mlcore.s3_uri import split_s3_uri
from mlops.errors import OperatorError
from mlplatform.registry.registry_actions import emit_promotion, promotion_detail
from mlplatform.serving.endpoint_state import IN_SERVICE, read_endpoint_state
from mlsettings.schema import LabelSpec
from mlsettings.vocabulary import CHALLENGER, CHALLENGER_SWAP_REASON, CHAMPION, PRODUCTION

CHALLENGER_SWAP = CHALLENGER_SWAP_REASON
KEEP_TESTING, PROMOTE, STOP = "keep_testing", "promote", "stop"


# ------------------------------------------------------------------------------------------- operator actions
def _serving_state(sagemaker_client: Any, endpoint: str) -> Any:
    state = read_endpoint_state(sagemaker_client, endpoint)
    if state is None:
        raise OperatorError(f"endpoint {endpoint} does not exist; nothing is deployed in this environment")
    if state.status != IN_SERVICE:
        raise OperatorError(f"endpoint {endpoint} is {state.status}; wait until it is InService")
    return state


def request_challenger_promotion(sagemaker_client: Any, events_client: Any, *, endpoint: str, group: str, model: str,
                                 event_bus_name: str, requested_by: str, stage: str = PRODUCTION) -> dict[str, Any]:
    state = _serving_state(sagemaker_client, endpoint)
    if CHALLENGER not in state.variants:
        raise OperatorError(f"{endpoint} has no {CHALLENGER} variant (variants: {', '.join(state.variants)})")
    champion, challenger = state.variants[CHAMPION], state.variants[CHALLENGER]
    if champion.model_package_arn == challenger.model_package_arn:
        raise OperatorError(f"{CHAMPION} and {CHALLENGER} both serve v{champion.version}; nothing to swap")
    detail = promotion_detail(group=group, model=model, model_package_arn=challenger.model_package_arn,
                              version=int(challenger.version or 0), target_stage=stage, reason=CHALLENGER_SWAP,
                              requested_by=requested_by)
    detail["variant"] = CHAMPION
    emit_promotion(events_client, event_bus_name, detail)
    return {**detail, "champion_version": champion.version, "challenger_version": challenger.version,
            "note": "the serving deployer swaps the roles through a blue/green update and records it"}


def shift_weights(sagemaker_client: Any, *, endpoint: str, challenger_percent: int) -> dict[str, Any]:
    if not 0 <= challenger_percent <= 100:
        raise OperatorError(f"--challenger-percent is {challenger_percent}; allowed: 0 to 100")
    state = _serving_state(sagemaker_client, endpoint)
    if CHALLENGER not in state.variants:
        raise OperatorError(f"{endpoint} has no {CHALLENGER} variant; there is no traffic to shift")
    weights = {CHAMPION: float(100 - challenger_percent), CHALLENGER: float(challenger_percent)}
    sagemaker_client.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[{"VariantName": n, "DesiredWeight": w} for n, w in weights.items()])
    return {"endpoint": endpoint, "before": dict(state.current_weights), "after": weights,
            "note": "weights only; the next deployment restores the configured weights"}


# ------------------------------------------------------------------------------------------- CloudWatch
_METRICS = {"invocations": ("Invocations", "Sum"), "errors_5xx": ("Invocation5XXErrors", "Sum"),
            "errors_4xx": ("Invocation4XXErrors", "Sum"), "latency_p50": ("ModelLatency", "p50"),
            "latency_p99": ("ModelLatency", "p99")}


def variant_traffic(cloudwatch_client: Any, *, endpoint: str, variants: Sequence[str], start: datetime,
                    end: datetime) -> dict[str, dict[str, float | None]]:
    """One period spanning the window, so each statistic (percentiles included) covers the whole window."""
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    queries = []
    for index, variant in enumerate(variants):
        for key, (metric, stat) in _METRICS.items():
            queries.append({"Id": f"v{index}_{key}", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric,
                           "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                          {"Name": "VariantName", "Value": variant}]},
                "Period": period, "Stat": stat}})
    values: dict[str, float] = {}
    request: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
    while True:
        answer = cloudwatch_client.get_metric_data(**request)
        for result in answer.get("MetricDataResults", []):
            if result.get("Values"):
                values[result["Id"]] = float(sum(result["Values"])) if result["Id"].endswith(
                    ("invocations", "5xx", "4xx")) else float(max(result["Values"]))
        if not answer.get("NextToken"):
            break
        request["NextToken"] = answer["NextToken"]
    traffic: dict[str, dict[str, float | None]] = {}
    for index, variant in enumerate(variants):
        invocations = values.get(f"v{index}_invocations", 0.0)
        errors = values.get(f"v{index}_errors_5xx", 0.0)
        p50, p99 = values.get(f"v{index}_latency_p50"), values.get(f"v{index}_latency_p99")
        traffic[variant] = {
            "requests": invocations, "errors_5xx": errors, "errors_4xx": values.get(f"v{index}_errors_4xx", 0.0),
            "error_rate": errors / invocations if invocations else None,
            # ModelLatency is in microseconds
            "latency_p50_ms": None if p50 is None else p50 / 1000,
            "latency_p99_ms": None if p99 is None else p99 / 1000}
    return traffic


# ------------------------------------------------------------------------------------------- captured traffic
@dataclass
class CapturedPredictions:
    probabilities: list[float] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)
    """Every captured answer in the model's kind's shape (for a binary model the probabilities again)."""
    records: int = 0
    malformed: int = 0
    malformed_reasons: dict[str, int] = field(default_factory=dict)


def _hours(start: datetime, end: datetime) -> Iterable[datetime]:
    moment = start.replace(minute=0, second=0, microsecond=0)
    while moment <= end:
        yield moment
        moment += timedelta(hours=1)


def read_captured_predictions(s3_client: Any, *, capture_uri: str, endpoint: str, variant: str, start: datetime,
                              end: datetime, n_features: int, feature_names: Sequence[str] | None = None,
                              join: QualityJoin | None = None, label: LabelSpec | None = None) -> CapturedPredictions:
    """Predictions of one variant from the data-capture files of the window's hours (malformed lines counted); each
    record also goes to ``join`` (the drift monitor's capture/label join), grouped by the variant."""
    bucket, root = split_s3_uri(capture_uri, key_required=False)
    captured = CapturedPredictions()
    paginator = s3_client.get_paginator("list_objects_v2")
    for hour in _hours(start, end):
        prefix = "/".join(p for p in (root.strip("/"), endpoint, variant, f"{hour:%Y/%m/%d/%H}") if p) + "/"
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3_client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                for line in body.splitlines():
                    if not line.strip():
                        continue
                    try:
                        record = parse_capture_line(line, n_features=n_features, feature_names=feature_names,
                                                    label=label)
                    except CaptureFormatError as err:
                        captured.malformed += 1
                        captured.malformed_reasons[err.reason] = captured.malformed_reasons.get(err.reason, 0) + 1
                        continue
                    captured.records += 1
                    captured.probabilities += record.probabilities
                    captured.answers += record.answers
                    if join is not None:
                        join.add_record(variant, record)
    return captured


def read_ground_truth(s3_client: Any, ground_truth_uri: str, label_spec: LabelSpec) -> LabelSet:
    """Every label file under the prefix, parsed by the drift monitor's reader (malformed labels are counted
    there and skipped)."""
    bucket, prefix = split_s3_uri(ground_truth_uri, key_required=False)
    keys = [item["Key"] for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])]
    objects = ((key, s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()) for key in keys)
    return read_labels(objects, label_spec)


def prediction_distribution(probabilities: Sequence[float]) -> dict[str, Any]:
    """A binary model's scores summarised (mlcore.outputs: each kind's summary)."""
    return summarise_answers(list(probabilities), LabelSpec(name="label"))


# ------------------------------------------------------------------------------------------- statistics
def recommend(*, traffic: Mapping[str, Mapping[str, Any]], quality: Mapping[str, Any] | None,
              labelled: Mapping[str, int], error_comparison: Mapping[str, Any] | None, sla_p99_ms: float | None,
              min_labelled: int) -> dict[str, str]:
    """keep_testing / promote / stop, and the numbers behind it."""
    challenger = traffic.get(CHALLENGER)
    if challenger is None:
        return {"recommendation": KEEP_TESTING, "reason": "the endpoint runs no Challenger; nothing to compare"}
    if error_comparison and error_comparison["significant"]:
        return {"recommendation": STOP, "reason": (
            f"Challenger 5XX rate {challenger['error_rate']:.3%} is significantly above the Champion's "
            f"{traffic[CHAMPION]['error_rate']:.3%} (p={error_comparison['p_value']:.3g})")}
    p99 = challenger.get("latency_p99_ms")
    if sla_p99_ms is not None and p99 is not None and p99 > sla_p99_ms:
        return {"recommendation": STOP,
                "reason": f"Challenger p99 model latency {p99:.1f} ms exceeds the SLA's {sla_p99_ms:g} ms"}
    short = {name: count for name, count in labelled.items() if count < min_labelled}
    if quality is None or short:
        have = ", ".join(f"{name} {labelled.get(name, 0)}" for name in (CHAMPION, CHALLENGER))
        return {"recommendation": KEEP_TESTING,
                "reason": f"not enough ground truth yet ({have} labelled rows; need {min_labelled} per variant)"}
    numbers = (f"{quality['metric']} Challenger {quality['challenger']:.4f} vs Champion {quality['champion']:.4f}, "
               f"difference {quality['difference']:+.4f}, p={quality['p_value']:.3g} ({quality['test']})")
    # ``improvement`` is positive when the Challenger is better (for an error such as MAE: when it is smaller).
    if quality["significant"] and quality.get("improvement", quality["difference"]) > 0:
        return {"recommendation": PROMOTE, "reason": f"Challenger is significantly better: {numbers}"}
    if quality["significant"]:
        return {"recommendation": STOP, "reason": f"Challenger is significantly worse: {numbers}"}
    return {"recommendation": KEEP_TESTING, "reason": f"no significant difference yet: {numbers}"}


def ab_report(*, sagemaker_client: Any, cloudwatch_client: Any, s3_client: Any, endpoint: str, capture_uri: str,
              start: datetime, end: datetime, n_features: int, feature_names: Sequence[str] | None = None,
              ground_truth_uri: str | None = None, label_spec: LabelSpec | None = None,
              sla_p99_ms: float | None = None,
              min_labelled: int = 100) -> dict[str, Any]:
    state = read_endpoint_state(sagemaker_client, endpoint)
    if state is None:
        raise OperatorError(f"endpoint {endpoint} does not exist; nothing is deployed in this environment")
    kind = label_spec.problem_type if label_spec is not None else LabelSpec(name="label").problem_type
    variants = [name for name in (CHAMPION, CHALLENGER) if name in state.variants]
    traffic = variant_traffic(cloudwatch_client, endpoint=endpoint, variants=variants, start=start, end=end)
    truth = read_ground_truth(s3_client, ground_truth_uri, label_spec) if ground_truth_uri and label_spec \
        else LabelSet()
    join = QualityJoin(truth)  # the drift monitor's own capture/label join, one group per variant
    captured = {name: read_captured_predictions(s3_client, capture_uri=capture_uri, endpoint=endpoint, variant=name,
                                                start=start, end=end, n_features=n_features,
                                                feature_names=feature_names, join=join, label=label_spec)
                for name in variants}
    pairs = {name: join.pairs(name) for name in variants}
    per_variant: dict[str, Any] = {}
    for name in variants:
        labels, scores = pairs[name]
        entry: dict[str, Any] = {
            "model_package_arn": state.variants[name].model_package_arn, "version": state.variants[name].version,
            "weight": state.current_weights.get(name), **traffic[name],
            "predictions": summarise_answers(captured[name].answers, label_spec or LabelSpec(name="label")),
            "capture_records": captured[name].records, "malformed_capture_records": captured[name].malformed,
            "labelled_rows": len(labels)}
        if labels:
            entry["quality"] = variant_quality(kind, labels, scores)
        per_variant[name] = entry
    quality = None
    if CHALLENGER in variants and all(pairs[name][0] for name in variants):
        # The kind's test (mlcore.ab_testing): AUC difference, chi-square on accuracy, Welch's t on absolute errors.
        quality = compare_variants(kind, pairs[CHAMPION], pairs[CHALLENGER])
    errors = compare_error_rates(traffic[CHAMPION], traffic[CHALLENGER]) if CHALLENGER in traffic else None
    decision = recommend(traffic=traffic, quality=quality, labelled={n: len(pairs[n][0]) for n in variants},
                         error_comparison=errors, sla_p99_ms=sla_p99_ms, min_labelled=min_labelled)
    return {"endpoint": endpoint, "window": {"start": start.isoformat(), "end": end.isoformat()},
            "variants": per_variant, "quality_comparison": quality, "error_rate_comparison": errors,
            "ground_truth_uri": ground_truth_uri, **decision}


def _fmt(value: Any, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def format_ab_report(report: Mapping[str, Any]) -> str:
    lines = [f"A/B report for {report['endpoint']}  {report['window']['start']} → {report['window']['end']}", ""]
    lines.append(f"  {'variant':<11} {'ver':>4} {'weight':>6} {'requests':>9} {'5xx rate':>9} {'p50 ms':>7} "
                 f"{'p99 ms':>7} {'mean p':>7} {'pos rate':>8} {'labelled':>8}  quality (95% CI)")
    for name, v in report["variants"].items():
        predictions = v["predictions"]
        quality = v.get("quality")
        quality_text = (f"{quality['metric']} {quality['value']:.4f} [{quality['ci95'][0]:.4f}, "
                        f"{quality['ci95'][1]:.4f}]" if quality else "-")
        lines.append(f"  {name:<11} {_fmt(v['version'], '>4')} {_fmt(v['weight'], '>6.0f')} "
                     f"{v['requests']:>9.0f} {_fmt(v['error_rate'], '>9.3%')} {_fmt(v['latency_p50_ms'], '>7.1f')} "
                     f"{_fmt(v['latency_p99_ms'], '>7.1f')} {_fmt(predictions.get('mean'), '>7.3f')} "
                     f"{_fmt(predictions.get('positive_rate'), '>8.1%')} {v['labelled_rows']:>8}  {quality_text}")
    lines += ["", f"recommendation: {report['recommendation'].replace('_', ' ')}", f"  {report['reason']}"]
    return "\n".join(lines)
