"""Training data that should be refused is refused by `mlops train --local`: one clear reason, exit 2, nothing
registered — never a traceback, never a model gated on a handful of rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlops import cli
from pipelines.datasets import write_breast_cancer_csv
from testkit.serving_world import MODEL


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return pd.read_csv(write_breast_cancer_csv(tmp_path_factory.mktemp("data") / "full.csv"))


def _rows(frame: pd.DataFrame, negatives: int, positives: int) -> pd.DataFrame:
    return pd.concat([frame[frame.target == 0].head(negatives), frame[frame.target == 1].head(positives)])


def _train(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["train", "--local", "--model", MODEL, "--num-round", "5", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(("negatives", "positives"), [(1, 1), (3, 2), (6, 6), (9, 40)])
def test_too_few_rows_per_class_are_refused_before_training(bundled: pd.DataFrame, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str], negatives: int,
                                                            positives: int) -> None:
    data = tmp_path / "small.csv"
    _rows(bundled, negatives, positives).to_csv(data, index=False)
    code, output = _train(capsys, "--data", str(data))
    assert code == 2
    assert "too_few_rows" in output and "at least 10 per class" in output
    assert "training.min_rows_per_class" in output and "Traceback" not in output
    assert "registered: nothing" in output


@pytest.mark.parametrize(("write", "hint"), [
    (lambda f, p: f.to_csv(p, index=False, sep=";"), "one column holding semicolons"),
    (lambda f, p: f.to_csv(p, index=False, sep="\t"), "one column holding tabs"),
    (lambda f, p: f.to_csv(p, index=False, header=False), "the first line looks like data, not a header"),
])
def test_a_header_that_does_not_parse_gets_one_hint_not_31_missing_columns(
        bundled: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str], write: Any, hint: str) -> None:
    data = tmp_path / "odd.csv"
    write(bundled.head(60), data)
    code, output = _train(capsys, "--data", str(data))
    assert code == 2
    assert hint in output
    assert "missing_column" not in output


@pytest.mark.parametrize("rounds", ["0", "-5"])
def test_num_round_below_one_is_refused(capsys: pytest.CaptureFixture[str], rounds: str) -> None:
    code = cli.main(["train", "--local", "--model", MODEL, "--num-round", rounds])
    assert code == 2
    assert f"--num-round is {rounds}; allowed: an integer from 1 to 100000" in capsys.readouterr().err


def test_a_used_workdir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "checkpoints").mkdir()
    code = cli.main(["train", "--local", "--model", MODEL, "--workdir", str(tmp_path)])
    assert code == 2
    assert f"--workdir {tmp_path} is not an empty folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_temporary_workdir_is_removed_unless_kept(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["train", "--local", "--model", MODEL, "--json", "--num-round", "30"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["workdir_removed"] is True
    assert not Path(summary["workdir"]).exists()
    code = cli.main(["train", "--local", "--model", MODEL, "--json", "--num-round", "30", "--keep-workdir"])
    kept = json.loads(capsys.readouterr().out)
    assert code == 0 and "workdir_removed" not in kept and Path(kept["workdir"]).is_dir()
