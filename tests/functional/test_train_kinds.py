"""`mlops train --local --model NAME` for one model of each kind in the default cdk.json (issue 25): each trains on
its bundled data, is gated on its kind's metric and bound, and registers with its kind's evaluation report,
golden answers and fallback model; a model whose data has lost its signal fails its gate and registers nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlcore.fallback import load_fallback
from mlcore.outputs import output_for
from mlops import cli
from mlsettings.problem_types import TYPES
from mlsettings.schema import DataSchema
from pipelines.datasets import REPO_SCHEMAS, shuffle_labels, write_bundled_csv

KINDS = {"breast-cancer": ("binary", "breast_cancer"), "wine": ("multiclass", "wine"),
         "diabetes": ("regression", "diabetes")}


def _train(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["train", "--local", "--json", "--num-round", "40", *args])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("model", sorted(KINDS))
def test_each_kind_trains_gates_and_registers(model: str, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    kind_name, schema_name = KINDS[model]
    kind = TYPES[kind_name]
    code, summary = _train(capsys, "--model", model, "--workdir", str(tmp_path), "--keep-workdir")
    assert code == 0, summary.get("failure")
    assert summary["status"] == "succeeded"
    gate = summary["gate"]
    metric = kind.gate_metric(gate["metric"])
    assert gate["passed"] is True and gate[metric.bound_key] is not None
    assert set(summary["metrics"]) >= {m.name for m in kind.gate_metrics}
    assert summary["model_package"]["version"] == 1

    schema = DataSchema.load(REPO_SCHEMAS / f"{schema_name}.json")
    run = tmp_path / "run"
    golden = json.loads(next(run.rglob("golden_payloads.json")).read_text())
    assert golden["problem_type"] == kind_name
    output = output_for(schema.label)
    for case in golden["cases"]:
        assert all(output.problem(answer, schema.label) is None for answer in case["expected"])
    fallback = load_fallback(next(run.rglob("model/fallback.json")))
    first_row = next(case["body"] for case in golden["cases"] if case["content_type"] == "text/csv").splitlines()[0]
    assert output.problem(fallback.predict_row(first_row.split(",")), schema.label) is None


@pytest.mark.parametrize("model", ["wine", "diabetes"])
def test_data_without_signal_fails_the_kinds_gate(model: str, capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    _, schema_name = KINDS[model]
    clean = write_bundled_csv(schema_name, tmp_path / "clean.csv")
    degraded = shuffle_labels(clean, tmp_path / "degraded.csv", label="target", seed=3)
    code, summary = _train(capsys, "--model", model, "--data", str(degraded))
    assert summary["status"] == "failed_gate"
    assert code == 1  # below the gate is 1; bad input would be 2
    assert summary["model_package"] is None
