"""Every metric-math expression of every alarm and dashboard in cdk.out, parsed and type-checked against
CloudWatch's documented grammar and function signatures (CloudWatch User Guide, "Using metric math":
"Metric math syntax and functions", "Using IF expressions"; awsdocs/amazon-cloudwatch-user-guide,
doc_source/using-metric-math.md):

- only documented functions, in uppercase, with documented argument types: S (scalar), TS (time series),
  TS[] (array of time series; "[m1, m2]" holds time series, so a scalar inside [...] is not documented);
- every id an expression names is a metric or expression of the same alarm or graph;
- an alarm's expression yields exactly one time series ("an alarm based on a math expression can watch
  only one time series"), and uses none of the functions AWS recommends against in alarms (AVG, MAX, MIN,
  SUM, STDDEV, DATAPOINT_COUNT, REMOVE_EMPTY, RUNNING_SUM: "This function acts differently when extra data
  is requested");
- Metrics Insights queries (SELECT ...) are a separate grammar, allowed in dashboards only here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from mlsettings.config import load_environments
from testkit.model_sample import sampled_project_context
from tests.infra.cloud_model import Stage
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

S, TS, ARRAY = "S", "TS", "TS[]"
NOT_IN_ALARMS = {"AVG", "MAX", "MIN", "SUM", "STDDEV", "DATAPOINT_COUNT", "REMOVE_EMPTY", "RUNNING_SUM"}
_ELEMENTWISE = {"ABS", "CEIL", "FLOOR", "LOG", "LOG10", "DIFF", "DIFF_TIME", "RATE", "RUNNING_SUM",
                "MINUTE", "HOUR", "DAY", "DATE", "MONTH", "YEAR", "EPOCH"}
_REDUCING = {"AVG", "MAX", "MIN", "SUM", "STDDEV", "DATAPOINT_COUNT"}
DOCUMENTED = _ELEMENTWISE | _REDUCING | {
    "ANOMALY_DETECTION_BAND", "FILL", "FIRST", "LAST", "IF", "INSIGHT_RULE_METRIC", "METRIC_COUNT", "METRICS",
    "PERIOD", "REMOVE_EMPTY", "SEARCH", "SERVICE_QUOTA", "SLICE", "SORT", "TIME_SERIES"}


class MathError(ValueError):
    pass


_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<string>\"[^\"]*\")"
                    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/^<>(),\[\]]))")


def tokens(expression: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(expression.rstrip()):
        match = _TOKEN.match(expression, position)
        if not match:
            raise MathError(f"unexpected {expression[position:]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


@dataclass
class Checker:
    """A recursive-descent parser that returns the documented type of each sub-expression."""

    ids: Mapping[str, str]
    in_alarm: bool

    def check(self, expression: str) -> str:
        self._tokens = tokens(expression)
        self._at = 0
        result = self._or()
        if self._at != len(self._tokens):
            raise MathError(f"unexpected {self._tokens[self._at][1]!r}")
        return result

    # ------------------------------------------------------------------ grammar (lowest precedence first)
    def _peek(self) -> str | None:
        return self._tokens[self._at][1] if self._at < len(self._tokens) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        if self._at >= len(self._tokens):
            raise MathError("unexpected end of expression")
        token = self._tokens[self._at]
        if expected is not None and token[1] != expected:
            raise MathError(f"expected {expected!r}, got {token[1]!r}")
        self._at += 1
        return token

    def _binary(self, operand: Any, operators: set[str], combine: Any) -> str:
        left = operand()
        while self._peek() in operators:
            operator = self._take()[1]
            left = combine(operator, left, operand())
        return left

    def _or(self) -> str:
        return self._binary(self._and, {"OR", "||"}, self._logical)

    def _and(self) -> str:
        return self._binary(self._comparison, {"AND", "&&"}, self._logical)

    def _comparison(self) -> str:
        return self._binary(self._sum, {"==", "!=", "<=", ">=", "<", ">"}, self._logical)

    def _sum(self) -> str:
        return self._binary(self._product, {"+", "-"}, self._arithmetic)

    def _product(self) -> str:
        return self._binary(self._power, {"*", "/"}, self._arithmetic)

    def _power(self) -> str:
        return self._binary(self._unary, {"^"}, self._arithmetic)

    @staticmethod
    def _logical(operator: str, left: str, right: str) -> str:
        if ARRAY in (left, right):
            raise MathError(f"{operator} compares a pair of time series or scalars, not an array")
        return TS if TS in (left, right) else S

    @staticmethod
    def _arithmetic(operator: str, left: str, right: str) -> str:
        if left == ARRAY and right == ARRAY:
            raise MathError(f"{operator} between two arrays of time series is not documented")
        return ARRAY if ARRAY in (left, right) else TS if TS in (left, right) else S

    def _unary(self) -> str:
        if self._peek() == "-":
            self._take()
            return self._unary()
        return self._atom()

    def _atom(self) -> str:
        kind, value = self._take()
        if kind == "number":
            return S
        if value == "(":
            inner = self._or()
            self._take(")")
            return inner
        if value == "[":
            items = [self._or()]
            while self._peek() == ",":
                self._take()
                items.append(self._or())
            self._take("]")
            if S in items:
                raise MathError("a scalar inside [...]: an array holds time series (TS[]), scalars are not "
                                "documented there")
            return ARRAY
        if kind == "name" and self._peek() == "(":
            return self._call(value)
        if kind == "name" and value in self.ids:
            return self.ids[value]
        raise MathError(f"{value!r} is neither a documented function nor an id of this alarm or graph")

    def _call(self, name: str) -> str:
        if name not in DOCUMENTED:
            raise MathError(f"{name} is not a documented metric math function")
        if self.in_alarm and name in NOT_IN_ALARMS:
            raise MathError(f"AWS recommends against {name} in alarms (it acts differently when the alarm "
                            "requests extra data points)")
        self._take("(")
        arguments: list[str] = []
        while self._peek() != ")":
            if self._tokens[self._at][0] == "string":
                self._take()
                arguments.append("string")
            elif self._peek() in ("REPEAT", "LINEAR"):
                self._take()
                arguments.append("fill-mode")
            else:
                arguments.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        return self._signature(name, arguments)

    @staticmethod
    def _signature(name: str, arguments: list[str]) -> str:
        def need(condition: bool) -> None:
            if not condition:
                raise MathError(f"{name}({', '.join(arguments)}) does not fit its documented arguments")

        first = arguments[0] if arguments else None
        if name in _ELEMENTWISE:
            need(len(arguments) == 1 and first in (TS, ARRAY))
            return first or TS
        if name in _REDUCING:
            need(len(arguments) == 1 and first in (TS, ARRAY))
            return S if first == TS else TS
        if name == "IF":
            need(len(arguments) in (2, 3) and first in (TS, S) and all(a in (TS, S) for a in arguments[1:]))
            return TS
        if name == "FILL":
            need(len(arguments) == 2 and first in (TS, ARRAY) and arguments[1] in (S, TS, "fill-mode"))
            return first or TS
        if name == "METRICS":
            need(arguments in ([], ["string"]))
            return ARRAY
        if name in ("FIRST", "LAST"):
            need(arguments == [ARRAY])
            return TS
        if name in ("METRIC_COUNT",):
            need(arguments == [ARRAY])
            return S
        if name == "PERIOD":
            need(arguments == [TS])
            return S
        if name == "TIME_SERIES":
            need(arguments == [S])
            return TS
        if name == "REMOVE_EMPTY":
            need(arguments == [ARRAY])
            return ARRAY
        raise MathError(f"{name} is documented but not modelled by this checker: extend it")


# ---------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Expression:
    where: str
    expression: str
    ids: Mapping[str, str]
    in_alarm: bool
    returned: bool


def alarm_expressions(stage: Stage) -> Iterator[Expression]:
    for alarm in stage.resources("AWS::CloudWatch::Alarm"):
        metrics = stage.resolve(alarm.stack, alarm.properties.get("Metrics", []))
        ids = {m["Id"]: TS for m in metrics if "MetricStat" in m}
        for query in metrics:
            if "Expression" in query:
                yield Expression(f"{alarm.stack}/{alarm.logical_id}/{query['Id']}", query["Expression"], ids,
                                 True, query.get("ReturnData", True))


def dashboard_expressions(stage: Stage) -> Iterator[Expression]:
    for dashboard in stage.resources("AWS::CloudWatch::Dashboard"):
        body = json.loads(stage.resolve(dashboard.stack, dashboard.properties["DashboardBody"]))
        for index, widget in enumerate(body["widgets"]):
            rows = widget.get("properties", {}).get("metrics") or []
            ids = {row[-1]["id"]: TS for row in rows if isinstance(row[-1], dict) and "id" in row[-1]
                   and "expression" not in row[-1]}
            for row in rows:
                options = row[-1] if isinstance(row[-1], dict) else {}
                if "expression" in options:
                    yield Expression(f"{dashboard.stack}/{dashboard.logical_id}/widget {index}",
                                     options["expression"], ids, False, True)


def problems(item: Expression) -> list[str]:
    if item.expression.lstrip().upper().startswith("SELECT "):
        return [] if not item.in_alarm else [f"{item.where}: Metrics Insights queries are not checked in alarms"]
    try:
        result = Checker(item.ids, item.in_alarm).check(item.expression)
    except MathError as error:
        return [f"{item.where}: {item.expression!r}: {error}"]
    if item.in_alarm and item.returned and result != TS:
        return [f"{item.where}: {item.expression!r} yields {result}, an alarm needs exactly one time series"]
    if result == S:
        return [f"{item.where}: {item.expression!r} yields a scalar; the final result must be a time series"]
    return []


@pytest.fixture(scope="module")
def stages(synthesized: SynthesizedApp) -> dict[str, Stage]:
    configs = load_environments(sampled_project_context())
    return {env: Stage.load(synthesized.outdir, env, configs[env].region) for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_alarm_and_dashboard_expression_is_documented_metric_math(stages: dict[str, Stage], env: str) -> None:
    items = [*alarm_expressions(stages[env]), *dashboard_expressions(stages[env])]
    assert len([i for i in items if i.in_alarm]) >= 2 and len([i for i in items if not i.in_alarm]) >= 2
    assert [p for item in items for p in problems(item)] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_alarm_watches_exactly_one_returned_series(stages: dict[str, Stage], env: str) -> None:
    for alarm in stages[env].resources("AWS::CloudWatch::Alarm"):
        metrics = alarm.properties.get("Metrics")
        if metrics:
            assert len([m for m in metrics if m.get("ReturnData", True)]) == 1, alarm.logical_id


@pytest.mark.parametrize(("expression", "in_alarm", "error"), [
    ("100 * errors / MAX([invocations, 1])", False, "a scalar inside"),
    ("100 * errors / MAX([invocations, other])", True, "recommends against MAX"),
    ("100 * errors / invocation", False, "neither a documented function nor an id"),
    ("max(errors)", False, "not a documented metric math function"),
    ("AVG(errors)", False, "yields a scalar"),
    ("METRICS()", True, "an alarm needs exactly one time series"),
    ("IF(invocations > 0, 100 * errors / invocations, 0)", True, None),
    ("FILL(errors, 0) / FILL(invocations, 1)", True, None),
])
def test_the_checker_refuses_what_cloudwatch_does_not_document(expression: str, in_alarm: bool,
                                                               error: str | None) -> None:
    found = problems(Expression("test", expression, {"errors": TS, "invocations": TS, "other": TS}, in_alarm, True))
    if error is None:
        assert found == []
    else:
        assert len(found) == 1 and error in found[0], found
