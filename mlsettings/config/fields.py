"""The configuration's building blocks: the error, a field with its doc and check, and the checks themselves
(numbers, patterns, lists, schedules, the data schema, and the values AWS accepts: instance types per purpose and
regions, from the snapshot of botocore's service models in mlsettings/aws_values.json)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

from mlsettings.aws_values import sagemaker_instance_types, sagemaker_regions
from mlsettings.schema import DataSchema, SchemaError
from mlsettings.vocabulary import SERVABLE_STAGES

T = TypeVar("T")
Check = Callable[[Any], str | None]


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the key path, the value and what is allowed."""


# ---------------------------------------------------------------- checks (return what is allowed, or None)
def positive(value: Any) -> str | None:
    return None if value > 0 else "a positive number"


def between(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        return None if low <= value <= high else f"a number from {low:g} to {high:g}"

    return check


def at_least(low: float) -> Check:
    def check(value: Any) -> str | None:
        return None if value >= low else f"a number of at least {low:g}"

    return check


def matches(pattern: str, allowed: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if compiled.fullmatch(value) else allowed

    return check


def each(check: Check) -> Check:
    def check_all(values: Any) -> str | None:
        for value in values:
            problem = check(value)
            if problem:
                return f"a list of {problem} (bad item {value!r})"
        return None

    return check_all


def one_of(allowed: tuple[Any, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if value in allowed else f"one of {list(allowed)}"

    check.allowed = allowed  # type: ignore[attr-defined]  # what tests sweep through every consumer
    return check


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)

REPO_ROOT = Path(__file__).resolve().parents[2]


def instance_type(shape: str, purpose: str) -> Check:
    def check(value: Any) -> str | None:
        if value in sagemaker_instance_types(shape):
            return None
        return f"a SageMaker {purpose} instance type (botocore's {shape}, e.g. 'ml.m5.xlarge')"

    return check


def region_check(value: Any) -> str | None:
    return None if value in sagemaker_regions() else "an AWS region where SageMaker is available, e.g. 'eu-west-1'"


TRAINING_INSTANCE = instance_type("TrainingInstanceType", "training")
PROCESSING_INSTANCE = instance_type("ProcessingInstanceType", "processing")
ENDPOINT_INSTANCE = instance_type("ProductionVariantInstanceType", "endpoint")
TRANSFORM_INSTANCE = instance_type("TransformInstanceType", "batch transform")

# EventBridge Scheduler/rule schedule grammar (AWS "Schedule expressions for rules"): rate(value unit) with a
# positive value and the singular unit for 1; cron with six fields, one of day-of-month/day-of-week being '?'.
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minutes", 0, 59, ()), ("hours", 0, 23, ()), ("day-of-month", 1, 31, ()), ("month", 1, 12, tuple(_MONTHS)),
    ("day-of-week", 1, 7, tuple(_DAYS)), ("year", 1970, 2199, ()))


def _cron_value(token: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if token.upper() in names:
        return True
    return token.isdigit() and low <= int(token) <= high


def _cron_field(text: str, position: int) -> str | None:
    name, low, high, names = _CRON_FIELDS[position]
    for item in text.split(","):
        if item == "*" or (item == "?" and name in ("day-of-month", "day-of-week")):
            continue
        if name == "day-of-month" and (item in ("L", "LW") or re.fullmatch(r"\d{1,2}W", item)):
            if item.endswith("W") and item not in ("L", "LW") and not 1 <= int(item[:-1]) <= 31:
                return f"{name} {item!r} is out of range {low}-{high}"
            continue
        if name == "day-of-week" and (re.fullmatch(r"[1-7A-Za-z]{1,3}L", item) or "#" in item):
            day, _, nth = item.rstrip("L").partition("#")
            if _cron_value(day, low, high, names) and (not nth or nth in "12345"):
                continue
            return f"{name} {item!r} is not a day (1-7 or SUN-SAT) with an optional L or #1-#5"
        base, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return f"{name} step {step!r} is not a positive integer"
        start, dash, end = base.partition("-")
        if base == "*" and step:
            continue
        if not _cron_value(start, low, high, names) or (dash and not _cron_value(end, low, high, names)):
            return f"{name} {item!r} is out of range {low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
    return None


def schedule_check(value: Any) -> str | None:
    allowed = "an EventBridge schedule: 'rate(N minutes|hours|days)' (N >= 1; 'minute' etc. for 1) or a "
    allowed += "six-field 'cron(minutes hours day-of-month month day-of-week year)' with '?' in one day field"
    rate = _RATE.fullmatch(value)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count == 0:
            return f"{allowed} (the rate is 0)"
        if (count == 1) == unit.endswith("s"):
            return f"{allowed} ({'singular' if count == 1 else 'plural'} unit needed for {count})"
        return None
    cron = re.fullmatch(r"cron\(([^()]*)\)", value)
    if not cron:
        return allowed
    fields = cron.group(1).split()
    if len(fields) != 6:
        return f"{allowed} (got {len(fields)} fields)"
    for position, text in enumerate(fields):
        problem = _cron_field(text, position)
        if problem:
            return f"{allowed} ({problem})"
    if (fields[2] == "?") == (fields[4] == "?"):
        return f"{allowed} (exactly one of day-of-month and day-of-week must be '?')"
    return None


def schema_file_check(value: Any) -> str | None:
    """A data schema file the runtime can load (mlsettings.schema, what the pipeline's steps, the inference API
    and the drift monitor read): not just JSON, a schema."""
    path = REPO_ROOT / value
    if not path.is_file():
        return f"a data schema file relative to the repository root ({path} does not exist)"
    try:
        DataSchema.load(path)
    except (OSError, UnicodeDecodeError, SchemaError) as err:
        return f"a data schema file (docs/TRAINING.md, 'The data schema'): {err}"
    return None


EMAIL = matches(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address")
# No user information (user:password@) in the authority: a URL carrying a credential belongs in Secrets Manager
# (https_secret_names), since cdk.json and the template are plain text.
HTTPS_URL = matches(r"https://[^\s/@]+(/[^\s]*)?", "an https:// URL without credentials (user:password@ belongs in "
                  "https_secret_names)")
ACCOUNT_ID = matches(r"\d{12}", "a 12-digit AWS account id")


def stages_check(values: Any) -> str | None:
    problem = each(one_of(SERVABLE_STAGES))(values)
    if problem:
        return problem
    if len(set(values)) != len(values):
        return f"a list of distinct stages from {list(SERVABLE_STAGES)}"
    return None


def setting(doc: str, *, default: Any = dataclasses.MISSING, check: Check | None = None,
            derived: bool = False) -> Any:
    """A config field: its doc goes to docs/CONFIGURATION.md, its check runs at parse time. ``derived``: set by the
    parser (not a key of cdk.json), so it has no row in the reference and the parser refuses it as a key."""
    metadata = {"doc": doc, "check": check, "derived": derived}
    if isinstance(default, list | dict):
        frozen = tuple(default) if isinstance(default, list) else default
        return field(default_factory=lambda: frozen, metadata=metadata)
    return field(default=default, metadata=metadata)
