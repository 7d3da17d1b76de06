"""`mlops cost` arithmetic, pinned on a fixed price table and small hand-written templates: every number below is
worked out by hand in the comments, so a change in how a line is computed fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.cost.assembly import StackTemplate
from mlops.cost.estimate import estimate
from mlops.cost.price_table import VENDORED, load_prices, parse_table
from mlops.cost.report import render_comparison, render_text
from mlops.cost.schedules import runs_per_month
from mlops.errors import OperatorError
from mlsettings.config import load_environments, project_context

REPO = Path(__file__).resolve().parents[2]
FIXED = {
    "sagemaker.hosting.ml.m5.large": 0.1, "sagemaker.training.ml.g5.xlarge": 1.5,
    "sagemaker.processing.ml.m5.xlarge": 0.25, "lambda.gb_second.arm64": 0.00001, "lambda.request": 0.0000002,
    "cloudwatch.alarm_metric": 0.1, "cloudwatch.dashboard": 3.0, "cloudwatch.custom_metric": 0.3, "kms.key": 1.0,
    "s3.standard": 0.02,
}


def _table(prices: dict[str, float] = FIXED, region: str = "eu-west-1") -> Any:
    return parse_table({"read_on": "2026-12-06", "currency": "USD", "sources": {"test": {"title": "fixed"}},
                        "prices": [{"key": k, "regions": [region], "usd": v, "per": "unit", "source": "test"}
                                   for k, v in prices.items()]}, Path("fixed.json"))


@pytest.mark.parametrize(("expression", "runs"), [
    ("rate(5 minutes)", 8760.0),             # 730 h x 12 an hour
    ("rate(1 hour)", 730.0),
    ("rate(7 days)", 730 / 168),
    ("cron(0 6 * * ? *)", 365 / 12),         # daily
    ("cron(0 6 ? * MON-FRI *)", 261 / 12),   # 2027 has 261 weekdays
    ("cron(0/15 * * * ? *)", 4 * 24 * 365 / 12),
    ("cron(0 12 1 * ? *)", 1.0),             # the first of each month
    ("cron(0 12 1 JAN,JUL ? *)", 2 / 12),
    ("cron(0 0 L * ? *)", 1.0),              # the last day of each month
    ("cron(0 9 ? * 2#1 *)", 1.0),            # the first Monday of each month
    ("cron(30 8,20 ? * SUN *)", 2 * 52 / 12),  # 2027 has 52 Sundays
])
def test_runs_per_month(expression: str, runs: float) -> None:
    assert runs_per_month(expression) == pytest.approx(runs)


def _stack(name: str, resources: dict[str, Any]) -> StackTemplate:
    return StackTemplate(stack=name, template={"Resources": {
        logical: {**body, "Metadata": {"aws:cdk:path": f"staging/{name}/{logical}/Resource"}}
        for logical, body in resources.items()}})


def _metric(namespace: str, name: str) -> dict[str, Any]:
    return {"Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": "Endpoint", "Value": "e"}]}


def _stacks() -> list[StackTemplate]:
    serving = _stack("Serving", {
        "Health": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 256, "Timeout": 60,
                                                                   "Architectures": ["arm64"]}},
        "HealthSchedule": {"Type": "AWS::Events::Rule", "Properties": {
            "ScheduleExpression": "rate(5 minutes)", "State": "ENABLED",
            "Targets": [{"Arn": {"Fn::GetAtt": ["Health", "Arn"]}, "Id": "t"}]}},
    })
    monitoring = _stack("Monitoring", {
        "Single": {"Type": "AWS::CloudWatch::Alarm", "Properties": _metric("MLOps", "DriftDetected")},
        "Math": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Metrics": [
            {"Id": "e", "Expression": "a + b"},
            {"Id": "a", "MetricStat": {"Metric": _metric("MLOps", "QualityDegraded"), "Stat": "Sum", "Period": 60}},
            {"Id": "b", "MetricStat": {"Metric": _metric("AWS/SageMaker", "Invocations"), "Stat": "Sum",
                                       "Period": 60}}]}},
        "Board": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": json.dumps({"widgets": [
            {"properties": {"metrics": [["MLOps", "MaxDrift", "Endpoint", "e", {"label": "x"}]]}}]})}},
    })
    storage = _stack("Storage", {"Key": {"Type": "AWS::KMS::Key", "Properties": {}}})
    return [monitoring, serving, storage]


def test_the_arithmetic_of_one_environment() -> None:
    """staging: Champion ml.m5.large 1-3 instances, Challenger 1-2 (cdk.json), hosting at $0.1/h:
    Champion 1 x 730 x 0.1 = 73.00 .. 3 x 730 x 0.1 = 219.00; Challenger 73.00 .. 146.00.
    Health check: 8,760 runs x 0.25 GB x 60 s = 131,400 GB-s x 0.00001 = 1.314, + 8,760 x 0.0000002 = 0.0018: 1.32.
    Alarms: 1 + 2 metrics (the math alarm reads two) = 3 x 0.1 = 0.30. Dashboard: 3.00.
    Custom metrics: DriftDetected, QualityDegraded, MaxDrift (3 distinct MLOps metrics) + FeatureDrift for the
    schema's 30 features x 2 variants = 63 x 0.3 = 18.90. KMS: 1 key = 1.00 (shared).
    Totals: 73 + 73 + 1.32 + 0.3 + 3 + 18.9 + 1 = 170.52 .. 219 + 146 + ... = 389.52."""
    config = load_environments(project_context())["staging"]
    result = estimate(config, _stacks(), _table(), REPO)
    lines = {(line.scope, line.item): (line.at_min, line.at_max) for line in result.lines}
    assert lines == {
        ("breast_cancer", "endpoint Champion (ml.m5.large)"): (73.0, 219.0),
        ("breast_cancer", "endpoint Challenger (ml.m5.large)"): (73.0, 146.0),
        ("breast_cancer", "Lambda runs of Serving/HealthSchedule"): (1.32, 1.32),
        ("breast_cancer", "CloudWatch alarms"): (0.3, 0.3),
        ("breast_cancer", "CloudWatch dashboards"): (3.0, 3.0),
        ("breast_cancer", "CloudWatch custom metrics"): (18.9, 18.9),
        ("shared", "KMS keys"): (1.0, 1.0),
    }
    assert result.totals() == {"at_min": 170.52, "at_max": 389.52, "known_lines": 7, "unknown_lines": 0}
    assert result.totals("shared") == {"at_min": 1.0, "at_max": 1.0, "known_lines": 1, "unknown_lines": 0}
    # per use, outside the total: S3 at $0.02/GB-month; a GB a day kept 90 days (staging's capture retention,
    # the code default) holds 90 GB: 90 / (730 / 24) months x 0.02 x ... = 0.02 x 90 / 30.4167 per day-GB
    (capture,) = [r for r in result.usage if "captured" in r.item]
    assert capture.usd == pytest.approx(round(0.02 * 90 / (730 / 24), 4))


def test_an_unknown_price_is_unknown_never_zero() -> None:
    config = load_environments(project_context())["staging"]
    prices = {k: v for k, v in FIXED.items() if k != "sagemaker.hosting.ml.m5.large"}
    result = estimate(config, _stacks(), _table(prices), REPO)
    endpoints = [line for line in result.lines if line.item.startswith("endpoint")]
    assert [(line.at_min, line.at_max, line.unknown) for line in endpoints] == [
        (None, None, ("sagemaker.hosting.ml.m5.large",))] * 2
    assert result.totals() == {"at_min": 24.52, "at_max": 24.52, "known_lines": 5, "unknown_lines": 2}
    text = render_text(result.to_dict())
    assert "unknown (no price for sagemaker.hosting.ml.m5.large)" in text
    assert "+ 2 unknown line(s)" in text


def test_a_region_without_prices_is_unknown_throughout() -> None:
    config = load_environments(project_context())["staging"]
    result = estimate(config, _stacks(), _table(region="us-east-1"), REPO)
    assert all(line.unknown for line in result.lines)
    assert result.totals()["known_lines"] == 0
    assert any("no prices for eu-west-1" in note for note in result.notes)
    assert "unknown (6 line(s) without a price)" in render_text(result.to_dict())


def test_training_runs_at_the_configured_schedule_with_spot_as_an_assumption() -> None:
    """dev retrains rate(7 days): 730 / 168 = 4.345 runs a month. Per run: Train 1 x ml.g5.xlarge x 1 h at $1.5
    = 1.5, Validate 1 x ml.m5.xlarge x 1 h at $0.25. A month: 6.52 and 1.09."""
    definition = {"Version": "2020-12-01", "Parameters": [
        {"Name": "TrainingInstanceType", "Type": "String", "DefaultValue": "ml.g5.xlarge"}], "Steps": [
        {"Name": "Validate", "Type": "Processing", "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}},
        {"Name": "Train", "Type": "Training", "Arguments": {
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": {"Get": "Parameters.TrainingInstanceType"}},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
            "EnableManagedSpotTraining": True}},
        # an own image's scoring: a transform job has no run-time bound, so only its rate per instance-hour
        {"Name": "Score", "Type": "Transform", "Arguments": {
            "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge"}}}]}
    text = json.dumps(definition)
    cut = text.index("ml.m5.xlarge")
    training = _stack("Training", {
        "Pipeline": {"Type": "AWS::SageMaker::Pipeline", "Properties": {
            "PipelineName": "mlops-dev-training",
            # the body as CDK writes it: an Fn::Join of JSON text around references
            "PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Join": ["", [text[:cut], text[cut:]]]}}}},
        "RetrainSchedule": {"Type": "AWS::Events::Rule", "Properties": {
            "ScheduleExpression": "rate(7 days)", "State": "ENABLED",
            "Targets": [{"Arn": {"Fn::Join": ["", ["arn:aws:sagemaker:eu-west-1:", {"Ref": "AWS::AccountId"},
                                                   ":pipeline/mlops-dev-training"]]}, "Id": "t"}]}},
    })
    config = load_environments(project_context())["dev"]
    result = estimate(config, [training], _table(), REPO)
    lines = {line.item: line for line in result.lines}
    train = lines["training step Train (ml.g5.xlarge x1)"]
    assert (train.at_min, train.at_max) == (6.52, 6.52)
    assert "spot" in train.basis and "up to 90 %" in train.basis and "new data" in train.basis
    assert (lines["processing step Validate (ml.m5.xlarge x1)"].at_max) == 1.09
    per_run = {rate.item: rate.usd for rate in result.usage if rate.per == "training run"}
    assert per_run == {"training step Train (ml.g5.xlarge)": 1.5, "processing step Validate (ml.m5.xlarge)": 0.25}
    (score,) = [rate for rate in result.usage if rate.item.startswith("transform step Score")]
    assert score.per == "instance-hour of a training run's scoring" and "no run-time bound" in score.basis
    assert (score.usd, score.unknown) == (None, ("sagemaker.transform.ml.m5.xlarge",))  # the fixed table has none
    assert not any(line.item.startswith("transform") for line in result.lines)  # nothing priced by a guess
    assert any("serves no registry stage" in note for note in result.notes)  # dev: no endpoint


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(currency="EUR"), "'currency' must be \"USD\""),
    (lambda d: d["prices"].append({**d["prices"][0]}), "a second time"),
    (lambda d: d["prices"][0].update(usd=-1), "not a price"),
    (lambda d: d["prices"][0].update(source="nowhere"), "is not one of the table's sources"),
    (lambda d: d["prices"][0].pop("regions"), "lacks one of key, regions, usd, per, source"),
])
def test_a_bad_price_table_is_refused_naming_what_is_wrong(change: Any, message: str) -> None:
    document = json.loads(VENDORED.read_text(encoding="utf-8"))
    change(document)
    with pytest.raises(OperatorError, match=__import__("re").escape(message)):
        parse_table(document, Path("prices.json"))


def test_the_vendored_table_is_dated_and_every_price_names_a_source() -> None:
    table = load_prices()
    assert table.read_on == "2026-12-06" and table.regions == ["eu-west-1", "us-east-1"]
    for price in table.entries.values():
        source = table.sources[price.source]
        assert source["title"] and source["url"] and source["prices_as_of"]


def test_the_comparison_shows_main_against_the_change() -> None:
    config = load_environments(project_context())["staging"]
    main = estimate(config, _stacks(), _table(), REPO).to_dict()
    bigger = {**FIXED, "sagemaker.hosting.ml.m5.large": 0.2}
    change = estimate(config, _stacks(), _table(bigger), REPO).to_dict()
    text = render_comparison([("staging", main, change), ("qa", None, change)])
    assert "| staging | $170.52 - $389.52 | $316.52 - $754.52 | +$365.00 |" in text
    assert "| qa | (no estimate) |" in text
    assert "| breast_cancer | endpoint Champion (ml.m5.large) | $73.00 - $219.00 | $146.00 - $438.00 |" in text


def test_the_processing_drift_engine_adds_one_job_per_scheduled_run() -> None:
    """monitoring.drift.engine = processing: the drift function (DRIFT_ENGINE=processing) starts one job per run,
    priced at its MaxRuntimeInSeconds (ProcessingJobSettings: 4 h). Daily: 365/12 runs x 4 h x $0.25 = 30.42."""
    from mlplatform.monitoring.processing_job import ProcessingJobSettings

    monitoring = _stack("Monitoring", {
        "Drift": {"Type": "AWS::Lambda::Function", "Properties": {
            "MemorySize": 3538, "Timeout": 900, "Architectures": ["arm64"],
            "Environment": {"Variables": {"DRIFT_ENGINE": "processing",
                                          "PROCESSING_INSTANCE_TYPE": "ml.m5.xlarge"}}}},
        "DriftSchedule": {"Type": "AWS::Events::Rule", "Properties": {
            "ScheduleExpression": "cron(0 6 * * ? *)", "Targets": [{"Arn": {"Fn::GetAtt": ["Drift", "Arn"]}}]}},
    })
    config = load_environments(project_context())["staging"]
    lines = {line.item: line for line in estimate(config, [monitoring], _table(), REPO).lines}
    job = lines["drift Processing job (ml.m5.xlarge x1)"]
    assert ProcessingJobSettings.__dataclass_fields__["max_runtime_seconds"].default == 4 * 3600
    assert (job.at_min, job.at_max) == (round(365 / 12 * 4 * 0.25, 2),) * 2
    # the function itself: 30.42 runs x 3.455 GB x 900 s x 0.00001 + requests = 0.95
    assert lines["Lambda runs of Monitoring/DriftSchedule"].at_max == round(
        365 / 12 * 3538 / 1024 * 900 * 0.00001 + 365 / 12 * 0.0000002, 2)
