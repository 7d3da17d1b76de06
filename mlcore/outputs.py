"""The served answer per kind of model: what one row's prediction is, how it is written in CSV and JSON, read back,
judged and summarised. The one place that knows each kind's output shape (mlsettings.problem_types.OutputShape).

* binary: a **score**, the positive class's probability. CSV line ``0.93``; JSON item ``0.93``.
* multiclass: a **label and a probability vector** over the schema's declared classes, in their order. CSV line
  ``<label>,<p_0>,…,<p_k-1>``; JSON item ``{"label": <class>, "probabilities": [p_0, …, p_k-1]}``. The label is
  the class of the highest probability (the first such class on a tie).
* regression: a **value**. CSV line ``151.2``; JSON item ``151.2``.

An answer in memory is the JSON item (a float, or a dict for multiclass). The serving handler writes answers
(``from_model``, ``csv_line``), evaluation reads the metric input (``metric_input``), the golden and health checks
parse and judge served answers (``parse_csv_line``, ``parse_json_item``, ``problem``, ``difference``), drift reads
the predicted value and the confidence (``drift_value``, ``confidence``).

Standard library only: the serving handler (copied into the model), the health-check Lambda and the inference
Lambda import it.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Sequence
from typing import Any

from mlsettings.problem_types import BINARY, MULTICLASS, REGRESSION
from mlsettings.schema import LabelSpec

PROBABILITY_SUM_TOLERANCE = 1e-4
"""How far a served probability vector's sum may be from 1 (float32 rounding of k probabilities stays far below)."""


class OutputError(ValueError):
    """A served answer that does not have its kind's shape; the message says what was expected."""


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise OutputError(f"{text!r} is not a number") from None


class _NumberOutput:
    """One number per row, in CSV and in JSON (``noun``: what the number is, in error messages)."""

    noun = "a number"

    def from_model(self, raw: Any, label: LabelSpec) -> float:
        return float(raw)

    def csv_line(self, answer: Any) -> str:
        return repr(float(answer))

    def parse_csv_line(self, text: str, label: LabelSpec) -> float:
        return _float(text.strip())

    def parse_json_item(self, item: Any, label: LabelSpec) -> float:
        if not _finite(item):
            raise OutputError(f"{item!r} is not {self.noun}")
        return float(item)


class ScoreOutput(_NumberOutput):
    """Binary: the positive class's probability."""

    what = "a probability"
    noun = "a score (a number)"
    probability_per_row = True
    """One probability per row: what the drift engine's fast capture parsers read as the score."""

    def problem(self, answer: Any, label: LabelSpec) -> str | None:
        if not _finite(answer) or not 0.0 <= answer <= 1.0:
            return f"{answer!r} is not a probability in [0, 1]"
        return None

    def difference(self, answer: Any, expected: Any) -> float:
        return abs(float(answer) - float(expected))

    def metric_input(self, answer: Any) -> float:
        return float(answer)

    def drift_value(self, answer: Any, label: LabelSpec) -> float:
        return float(answer)

    def confidence(self, answer: Any) -> float | None:
        return max(float(answer), 1.0 - float(answer))

    def summary(self, answers: Sequence[Any], label: LabelSpec) -> dict[str, Any]:
        """Scores summarised (the A/B report's per-variant distribution): quantiles, the share at or above 0.5 and
        ten equal-width bins of [0, 1]."""
        scores = [float(a) for a in answers]
        histogram = [0] * 10
        for score in scores:
            histogram[min(int(score * 10), 9)] += 1
        return {"rows": len(scores), **_quantiles(scores),
                "positive_rate": sum(1 for p in scores if p >= 0.5) / len(scores), "histogram": histogram}

    def api_item(self, answer: Any, decision_threshold: float) -> dict[str, Any]:
        """The inference API's item: the probability and the label the decision threshold gives it."""
        return {"probability": float(answer), "label": 1 if float(answer) >= decision_threshold else 0}

    def default_answer(self, label: LabelSpec, probability: float) -> float:
        """The safe default: the configured probability (inference_api.safe_default_probability)."""
        return float(probability)


class ClassProbabilitiesOutput:
    """Multiclass: the most probable declared class and the probability of every declared class."""

    what = "a label with one probability per declared class"
    probability_per_row = False

    def from_model(self, raw: Any, label: LabelSpec) -> dict[str, Any]:
        probabilities = [float(p) for p in raw]
        top = max(range(len(probabilities)), key=probabilities.__getitem__)
        return {"label": label.classes[top], "probabilities": probabilities}

    def csv_line(self, answer: Any) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow([answer["label"], *(repr(p) for p in answer["probabilities"])])
        return buffer.getvalue()

    def parse_csv_line(self, text: str, label: LabelSpec) -> dict[str, Any]:
        fields = next(csv.reader([text]), [])
        if len(fields) != 1 + len(label.classes):
            raise OutputError(f"{len(fields)} field(s); expected the label and {len(label.classes)} probabilities")
        return {"label": _declared_class(fields[0].strip(), label), "probabilities": [_float(f) for f in fields[1:]]}

    def parse_json_item(self, item: Any, label: LabelSpec) -> dict[str, Any]:
        if not isinstance(item, dict) or set(item) != {"label", "probabilities"}:
            raise OutputError(f"{item!r} is not {{'label': class, 'probabilities': [...]}}")
        probabilities = item["probabilities"]
        if not isinstance(probabilities, list) or not all(_finite(p) for p in probabilities):
            raise OutputError(f"probabilities {probabilities!r} is not a list of numbers")
        return {"label": _declared_class(str(item["label"]), label), "probabilities": [float(p) for p in probabilities]}

    def problem(self, answer: Any, label: LabelSpec) -> str | None:
        probabilities = answer["probabilities"]
        if len(probabilities) != len(label.classes):
            return f"{len(probabilities)} probabilities for {len(label.classes)} declared classes"
        if not all(_finite(p) and 0.0 <= p <= 1.0 for p in probabilities):
            return f"probabilities {probabilities!r} are not all in [0, 1]"
        if abs(math.fsum(probabilities) - 1.0) > PROBABILITY_SUM_TOLERANCE:
            return f"probabilities sum to {math.fsum(probabilities):.6f}, not 1 (tolerance {PROBABILITY_SUM_TOLERANCE})"
        if answer["label"] not in label.classes:
            return f"label {answer['label']!r} is not one of the declared classes {list(label.classes)}"
        if probabilities[label.classes.index(answer["label"])] < max(probabilities):
            return f"label {answer['label']!r} is not the most probable class"
        return None

    def difference(self, answer: Any, expected: Any) -> float:
        if str(answer["label"]) != str(expected["label"]) or len(answer["probabilities"]) != len(
                expected["probabilities"]):
            return math.inf
        return max(abs(float(a) - float(e)) for a, e in zip(answer["probabilities"], expected["probabilities"],
                                                            strict=True))

    def metric_input(self, answer: Any) -> list[float]:
        return [float(p) for p in answer["probabilities"]]

    def drift_value(self, answer: Any, label: LabelSpec) -> float:
        """The predicted class's index (a categorical value: its mix is compared, not its magnitude)."""
        return float(label.classes.index(answer["label"]))

    def confidence(self, answer: Any) -> float | None:
        return max(float(p) for p in answer["probabilities"])

    def summary(self, answers: Sequence[Any], label: LabelSpec) -> dict[str, Any]:
        """The predicted-class mix and the top-class probability's quantiles."""
        mix = {str(cls): sum(1 for a in answers if a["label"] == cls) / len(answers) for cls in label.classes}
        top = _quantiles([max(a["probabilities"]) for a in answers])
        return {"rows": len(answers), "class_mix": mix, "top_probability": top}

    def api_item(self, answer: Any, decision_threshold: float) -> dict[str, Any]:
        return {"label": answer["label"], "probabilities": list(answer["probabilities"])}

    def default_answer(self, label: LabelSpec, probability: float) -> dict[str, Any]:
        """The safe default without a fallback model: every declared class equally likely, the first one as label
        (the class priors of the fallback model answer before it when that model loaded)."""
        share = 1.0 / len(label.classes)
        return {"label": label.classes[0], "probabilities": [share] * len(label.classes)}


class ValueOutput(_NumberOutput):
    """Regression: the predicted value, which must be finite and within the schema's target range."""

    what = "a finite value"
    noun = "a value (a finite number)"
    probability_per_row = False

    def problem(self, answer: Any, label: LabelSpec) -> str | None:
        if not _finite(answer):
            return f"{answer!r} is not a finite number"
        if (label.min is not None and answer < label.min) or (label.max is not None and answer > label.max):
            return f"{answer!r} is outside the target's range [{label.min}, {label.max}] (schema label)"
        return None

    def difference(self, answer: Any, expected: Any) -> float:
        """Relative to the value's size (at least 1): float32 trees answer a value of 150 to ~1e-5 relative."""
        return abs(float(answer) - float(expected)) / max(1.0, abs(float(expected)))

    def metric_input(self, answer: Any) -> float:
        return float(answer)

    def drift_value(self, answer: Any, label: LabelSpec) -> float:
        return float(answer)

    def confidence(self, answer: Any) -> float | None:
        return None

    def summary(self, answers: Sequence[Any], label: LabelSpec) -> dict[str, Any]:
        """The values' mean and quantiles."""
        return {"rows": len(answers), **_quantiles([float(a) for a in answers])}

    def api_item(self, answer: Any, decision_threshold: float) -> dict[str, Any]:
        return {"value": float(answer)}

    def default_answer(self, label: LabelSpec, probability: float) -> float:
        """The safe default without a fallback model: the middle of the target's declared range (the training
        median of the fallback model answers before it when that model loaded)."""
        low = label.min if label.min is not None else 0.0
        high = label.max if label.max is not None else low
        return (low + high) / 2.0


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    """Mean and the 10th, 50th and 90th percentiles (linear interpolation, numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return {"mean": ordered[0], "p10": ordered[0], "p50": ordered[0], "p90": ordered[0]}
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return {"mean": math.fsum(ordered) / len(ordered), "p10": deciles[0], "p50": deciles[4], "p90": deciles[8]}


def _declared_class(text: str, label: LabelSpec) -> int | str:
    for cls in label.classes:
        if str(cls) == text:
            return cls
    raise OutputError(f"label {text!r} is not one of the declared classes {list(label.classes)}")


OutputCodec = ScoreOutput | ClassProbabilitiesOutput | ValueOutput
OUTPUTS: dict[str, OutputCodec] = {BINARY: ScoreOutput(), MULTICLASS: ClassProbabilitiesOutput(),
                                   REGRESSION: ValueOutput()}


def output_for(label: LabelSpec) -> OutputCodec:
    """The output shape of the label's kind of model."""
    return OUTPUTS[label.problem_type]


def summarise_answers(answers: Sequence[Any], label: LabelSpec) -> dict[str, Any]:
    """A set of answers summarised for their kind (``{"rows": 0}`` for none)."""
    return output_for(label).summary(answers, label) if answers else {"rows": 0}


def answer_lines(body: str) -> list[str]:
    """A CSV response body's lines, one per row: every line ends with a line break except perhaps the last, so
    ``"0.1\n\n"`` holds two answers (the second empty: an unscored row) and ``"0.1\n0.2"`` two."""
    return body.splitlines()


def parse_csv_answers(body: str, label: LabelSpec) -> list[Any]:
    """A CSV response body as answers, one per line; an empty line (an unscored row) is None."""
    codec = output_for(label)
    return [codec.parse_csv_line(line, label) if line.strip() else None for line in answer_lines(body)]


def parse_json_answers(items: Sequence[Any], label: LabelSpec) -> list[Any]:
    """A JSON response's ``predictions`` as answers; ``null`` (an unscored row) is None."""
    codec = output_for(label)
    return [None if item is None else codec.parse_json_item(item, label) for item in items]
