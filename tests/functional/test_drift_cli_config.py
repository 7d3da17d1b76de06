"""`mlops drift` judges a window with the deployed drift Lambda's thresholds (from cdk.json), exits 3 when
there is not enough data, writes --html into new folders, and refuses bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlcore.drift.statistics import DriftThresholds
from mlops import cli, project_config
from mlsettings.config import drift_thresholds as lambda_thresholds
from mlsettings.config import load_environments, parse_environment
from pipelines.datasets import synthetic_schema, write_synthetic_csv
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.functional import drift_monitor_testkit as kit

EXIT_DRIFTED, EXIT_NOT_ENOUGH_DATA = 1, 3


def write_baseline(folder: Path) -> Path:
    data = write_synthetic_csv(folder / "train.csv", rows=1500)
    schema = folder / "schema.json"
    schema.write_text(json.dumps(synthetic_schema()))
    out = folder / "baseline.json"
    assert cli.main(["baseline", "--data", str(data), "--schema", str(schema), "--out", str(out)]) == 0
    return out


def write_capture(folder: Path, *, rows: int = 400, shifted: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    traffic = kit.traffic_rows(rows, seed=9, shift_tenure=50 if shifted else 0)
    lines = [kit.csv_line([r], [0.4], event_id=str(i)) for i, r in enumerate(traffic)]
    (folder / "a.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = write_baseline(tmp_path)
    capsys.readouterr()
    return path


@pytest.fixture
def project_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the CLI at a copy of cdk.json with some settings changed."""

    def write(defaults_drift: dict[str, Any] | None = None, **env_drift: dict[str, Any]) -> Path:
        context = sampled_project_context()
        if defaults_drift:
            context["defaults"].setdefault("monitoring", {})["drift"] = defaults_drift
        for env, drift in env_drift.items():
            context["environments"].setdefault(env, {}).setdefault("monitoring", {})["drift"] = drift
        path = tmp_path / "project" / "cdk.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({"context": context}))
        monkeypatch.setattr(project_config, "PROJECT_FILE", path)
        return path

    return write


def _drift(baseline: Path, capture: Path, *extra: str) -> int:
    return cli.main(["drift", "--baseline", str(baseline), "--capture", str(capture), "--fail-on-drift", *extra])


# ------------------------------------------------------------------ the Lambda's thresholds


def test_without_env_the_thresholds_are_cdk_json_defaults(baseline: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _drift(baseline, write_capture(tmp_path / "c"), "--json") == EXIT_DRIFTED
    report = json.loads(capsys.readouterr().out)
    defaults = parse_environment("defaults", {}, sampled_project_context()["defaults"])
    assert report["thresholds"] == DriftThresholds.from_dict(lambda_thresholds(defaults)).to_dict()
    # DriftThresholds' own defaults are the configuration's (mlsettings.drift): they once were 0.2 and 0.15
    assert (report["thresholds"]["js"], report["thresholds"]["ks"]) == (0.1, 0.1) == (DriftThresholds().js,
                                                                                   DriftThresholds().ks)


def test_min_rows_from_the_defaults_decides_whether_there_is_enough_data(
        baseline: Path, tmp_path: Path, project_file: Any, capsys: pytest.CaptureFixture[str]) -> None:
    project_file(defaults_drift={"min_rows": 1000})
    assert _drift(baseline, write_capture(tmp_path / "c", rows=400)) == EXIT_NOT_ENOUGH_DATA
    assert "not enough data to judge: 400 rows, fewer than min_rows 1000" in capsys.readouterr().err


def test_env_takes_that_environments_monitoring_thresholds(baseline: Path, tmp_path: Path, project_file: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    project_file(staging={"min_rows": 1000})
    capture = write_capture(tmp_path / "c", rows=400)
    assert _drift(baseline, capture, "--env", "staging", "--model", MODEL) == EXIT_NOT_ENOUGH_DATA
    assert _drift(baseline, capture, "--env", "dev", "--model", MODEL) == EXIT_DRIFTED
    assert _drift(baseline, capture, "--env", "staging", "--model", MODEL, "--thresholds",
                  '{"min_rows": 300}') == EXIT_DRIFTED


def test_unknown_env_lists_the_environments(baseline: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _drift(baseline, tmp_path, "--env", "qa") == 2
    assert "--env 'qa' is not an environment in " in capsys.readouterr().err


@pytest.mark.slow
def test_the_cli_mapping_is_what_the_stack_gives_the_drift_lambda(tmp_path: Path) -> None:
    """The environment's thresholds reach every model's drift function; a model's own override reaches only its
    own (models.<name>.monitoring over environments.<env>.monitoring)."""
    import aws_cdk as cdk

    from stacks.app_builder import build_app

    context = sampled_project_context()
    context["environments"]["dev"]["monitoring"] = {
        "drift": {"psi_threshold": 0.37, "js_threshold": 0.11, "ks_threshold": 0.13, "weighted_drift_alarm": 0.3,
                  "min_rows": 250},
        "alarms": {"confidence_shift_psi": 0.27}}
    other = next(name for name in context["models"] if name != MODEL)
    context["models"][other]["monitoring"] = {"drift": {"psi_threshold": 0.5}}
    app = cdk.App(outdir=str(tmp_path / "cdk.out"),
                  context={**context, "env": "dev", "aws:cdk:bundling-stacks": []})
    [stage] = build_app(app, context=context, with_nag=False)
    assembly = app.synth()
    configs = load_environments(context)["dev"]
    for model, psi in ((MODEL, 0.37), (other, 0.5)):
        template = assembly.get_stack_artifact(stage.models[model].artifact_id).template
        [variables] = [r["Properties"]["Environment"]["Variables"] for r in template["Resources"].values()
                       if r["Type"] == "AWS::Lambda::Function"
                       and r["Properties"].get("Handler") == "lambdas.drift_monitor.handler.lambda_handler"]
        config = configs.for_model(model)
        assert json.loads(variables["DRIFT_THRESHOLDS"]) == lambda_thresholds(config)
        assert lambda_thresholds(config)["psi"] == psi and lambda_thresholds(config)["min_rows"] == 250
        assert lambda_thresholds(config)["weighted_drift"] == 0.3


# ------------------------------------------------------------------ exit statuses


def test_exit_statuses_of_fail_on_drift(baseline: Path, tmp_path: Path) -> None:
    assert _drift(baseline, write_capture(tmp_path / "shifted", shifted=True)) == EXIT_DRIFTED
    assert _drift(baseline, write_capture(tmp_path / "same", shifted=False)) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _drift(baseline, empty) == EXIT_NOT_ENOUGH_DATA
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "x.jsonl").write_text("not json\n{\"captureData\": 1}\n" * 200)
    assert _drift(baseline, garbage) == EXIT_NOT_ENOUGH_DATA
    # without --fail-on-drift the command reports and exits 0 either way
    assert cli.main(["drift", "--baseline", str(baseline), "--capture", str(empty)]) == 0


# ------------------------------------------------------------------ --html


def test_html_into_a_missing_folder_creates_it(baseline: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "2026" / "drift.html"
    assert _drift(baseline, write_capture(tmp_path / "c"), "--html", str(out)) == EXIT_DRIFTED
    assert "tenure_months" in out.read_text()


def test_html_onto_a_folder_is_one_line(baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _drift(baseline, write_capture(tmp_path / "c"), "--html", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--html {tmp_path} is a folder" in err


def test_bad_thresholds_are_one_line(baseline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _drift(baseline, tmp_path, "--thresholds", "{psi: 1}") == 2
    assert "--thresholds is not JSON" in capsys.readouterr().err
    assert _drift(baseline, tmp_path, "--thresholds", '{"bogus": 1}') == 2
    assert "unknown drift threshold keys ['bogus']" in capsys.readouterr().err
