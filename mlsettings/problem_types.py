"""The three kinds of model (issue 25): what every stage keys on a model's ``problem_type``, defined once.

SageMaker's model-quality vocabulary has exactly three problem types (Model Monitor's ModelQualityJobInput
``ProblemType``: BinaryClassification, MulticlassClassification, Regression), each with its own section of the
model-quality report (``binary_classification_metrics``, ``multiclass_classification_metrics``,
``regression_metrics``). Training, evaluation, the quality gate, serving, the golden checks, the fallback model,
drift and the A/B report all read the type through this module: nothing else branches on the type's name.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

BINARY: Final = "binary"
MULTICLASS: Final = "multiclass"
REGRESSION: Final = "regression"
ProblemTypeName = Literal["binary", "multiclass", "regression"]
PROBLEM_TYPES: tuple[str, ...] = (BINARY, MULTICLASS, REGRESSION)

HIGHER: Final = "higher"
LOWER: Final = "lower"


LOWER_BOUND_KEY: Final = "lower_bound_95"
UPPER_BOUND_KEY: Final = "upper_bound_95"
"""Keys of a metric's 95 % confidence bound in the evaluation report (mlcore.metrics writes the one that counts)."""


@dataclass(frozen=True)
class GateMetric:
    """A metric the quality gate may compare, and which way is better. The gate passes on the 95 % lower bound
    of a higher-is-better metric and on the 95 % upper bound of a lower-is-better one. ``low``/``high`` is the
    range a threshold for it may take (None: unbounded on that side)."""

    name: str
    better: str  # HIGHER or LOWER
    low: float | None = 0.0
    high: float | None = 1.0
    relative_drop: bool = False
    """A metric in the target's units (rmse, mae): ground-truth quality measures its drop as a fraction of the
    registered value, so one margin (monitoring.alarms.quality_margin) fits any target scale."""

    @property
    def bound_key(self) -> str:
        return LOWER_BOUND_KEY if self.better == HIGHER else UPPER_BOUND_KEY

    @property
    def comparison(self) -> str:
        """How the value and its bound must compare with the threshold: ``>=`` or ``<=``."""
        return ">=" if self.better == HIGHER else "<="

    def threshold_problem(self, threshold: float) -> str | None:
        """Why ``threshold`` cannot be this metric's threshold, or None."""
        if (self.low is not None and threshold < self.low) or (self.high is not None and threshold > self.high):
            low = "-inf" if self.low is None else f"{self.low:g}"
            high = "inf" if self.high is None else f"{self.high:g}"
            return f"a threshold for {self.name} lies in [{low}, {high}]"
        return None


@dataclass(frozen=True)
class OutputShape:
    """What the endpoint answers per row for a kind of model, in CSV (one line per row) and JSON (one item of
    ``predictions`` per row). Serving writes it, capture parsing, the golden check and the health check read it."""

    csv_columns: str
    """How one CSV line reads (for the docs and the package's ``output_schema`` metadata, so only the characters
    CustomerMetadataValue allows: letters, digits, spaces and _.:/=+-@)."""
    json_item: str
    """How one JSON prediction reads."""
    confidence: str | None
    """The number that says how sure one answer is, or None (regression: drift of the value itself replaces it)."""


@dataclass(frozen=True)
class ProblemType:
    name: str
    sagemaker_name: str
    """Model Monitor's ProblemType value."""
    report_section: str
    """The model-quality report's section that holds this type's metrics."""
    task: str
    """CreateModelPackage's Task (botocore's enum)."""
    objective: str
    """XGBoost's objective (num_class comes from the schema's classes for multiclass)."""
    eval_metric: str
    """XGBoost's evaluation metrics (comma-separated) logged per round on train and validation."""
    gate_metrics: tuple[GateMetric, ...]
    default_gate_metric: str
    quality_metrics: tuple[str, ...]
    """Metrics ground-truth quality computes per variant (a superset of the gate's)."""
    output: OutputShape
    """The served answer per row."""
    fallback: str
    """The fallback model training exports (mlcore.fallback): what the inference Lambda answers with when the
    endpoint fails."""
    safe_default: str
    """The last rung of degradation: the answer when neither endpoint, fallback model nor cache can answer."""
    prediction_drift: str
    """How the served predictions' distribution is compared with the baseline's (mlcore.drift)."""
    ab_test: str
    """The A/B report's significance test for Challenger against Champion (mlcore.ab_testing)."""

    def gate_metric(self, name: str) -> GateMetric:
        for metric in self.gate_metrics:
            if metric.name == name:
                return metric
        raise ValueError(f"quality gate metric {name!r} is not one of {', '.join(m.name for m in self.gate_metrics)} "
                         f"for problem type {self.name}")


TYPES: dict[str, ProblemType] = {
    BINARY: ProblemType(
        name=BINARY, sagemaker_name="BinaryClassification", report_section="binary_classification_metrics",
        task="CLASSIFICATION", objective="binary:logistic", eval_metric="auc,logloss",
        gate_metrics=(GateMetric("auc", HIGHER), GateMetric("f1", HIGHER), GateMetric("precision", HIGHER),
                      GateMetric("recall", HIGHER)),
        default_gate_metric="auc", quality_metrics=("auc", "accuracy", "f1", "precision", "recall"),
        output=OutputShape(csv_columns="the score: the positive class probability",
                           json_item="score", confidence="score"),
        fallback="logistic_regression", safe_default="the training set's positive rate as the score",
        prediction_drift="score: PSI and KS against the baseline's score distribution",
        ab_test="AUC difference (Hanley-McNeil z), or two proportions of correct answers when AUC is undefined"),
    MULTICLASS: ProblemType(
        name=MULTICLASS, sagemaker_name="MulticlassClassification",
        report_section="multiclass_classification_metrics", task="CLASSIFICATION", objective="multi:softprob",
        eval_metric="mlogloss,merror",
        gate_metrics=(GateMetric("accuracy", HIGHER), GateMetric("macro_f1", HIGHER),
                      GateMetric("log_loss", LOWER, 0.0, None)),
        default_gate_metric="accuracy", quality_metrics=("accuracy", "macro_f1", "log_loss"),
        output=OutputShape(csv_columns="the label then one probability per declared class in schema order",
                           json_item='{"label": class, "probabilities": [p per declared class]}',
                           confidence="top_class_probability"),
        fallback="class_priors", safe_default="the majority class with the training class priors",
        prediction_drift="predicted-class mix: chi-square test and per-class PSI against the baseline's mix",
        ab_test="chi-square test of accuracy (2x2 table of correct answers per variant)"),
    REGRESSION: ProblemType(
        name=REGRESSION, sagemaker_name="Regression", report_section="regression_metrics", task="REGRESSION",
        objective="reg:squarederror", eval_metric="rmse,mae",
        gate_metrics=(GateMetric("rmse", LOWER, 0.0, None, relative_drop=True),
                      GateMetric("mae", LOWER, 0.0, None, relative_drop=True),
                      GateMetric("r2", HIGHER, None, 1.0)),
        default_gate_metric="r2", quality_metrics=("rmse", "mae", "r2"),
        output=OutputShape(csv_columns="the predicted value", json_item="value", confidence=None),
        fallback="target_median", safe_default="the training target's median",
        prediction_drift="value: KS test and Wasserstein distance against the baseline's values",
        ab_test="Welch's t-test on absolute errors"),
}


QUALITY_METRIC_NAMES: dict[str, str] = {
    "auc": "QualityAUC", "accuracy": "QualityAccuracy", "f1": "QualityF1", "precision": "QualityPrecision",
    "recall": "QualityRecall", "macro_f1": "QualityMacroF1", "log_loss": "QualityLogLoss", "rmse": "QualityRMSE",
    "mae": "QualityMAE", "r2": "QualityR2"}
"""The CloudWatch metric the drift monitor publishes for each ground-truth quality metric (and the dashboard
graphs per kind of model)."""

ALL_GATE_METRICS: tuple[str, ...] = tuple(m.name for t in TYPES.values() for m in t.gate_metrics)
"""Every metric some kind of model's gate accepts (each belongs to exactly one kind)."""
ALL_QUALITY_METRICS: tuple[str, ...] = tuple(dict.fromkeys(m for t in TYPES.values() for m in t.quality_metrics))
"""Every metric ground-truth quality computes for some kind of model."""


def gate_metric(name: str) -> tuple[ProblemType, GateMetric]:
    """The kind of model a gate metric belongs to, and the metric (gate metric names are unique across kinds)."""
    for kind in TYPES.values():
        for metric in kind.gate_metrics:
            if metric.name == name:
                return kind, metric
    raise ValueError(f"quality gate metric {name!r} is not one of {', '.join(ALL_GATE_METRICS)}")


def problem_type(name: str) -> ProblemType:
    try:
        return TYPES[name]
    except KeyError:
        raise ValueError(f"problem type {name!r} is not one of {', '.join(PROBLEM_TYPES)}") from None
