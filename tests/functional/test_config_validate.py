"""`mlops config validate`: the cdk.json of the current folder (or --file), every way it can be unusable as
one line with exit 2, and warnings that --strict turns into errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops import cli
from mlops.project_config import config_warnings, is_production
from mlsettings.config import load_environments, project_context


def _write(path: Path, context: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"app": "python app.py", "context": context}, indent=2))
    return path


def _validate(*argv: str) -> int:
    return cli.main(["config", "validate", *argv])


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def with_pager(context: dict[str, Any], env: str = "prod") -> dict[str, Any]:
    context["environments"][env].setdefault("monitoring", {})["alarms"] = {"page": {"emails": ["oncall@example.com"]}}
    return context


def test_validates_the_cdk_json_of_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "cdk.json", with_pager(project_context()))
    monkeypatch.chdir(tmp_path)
    assert _validate() == 0
    out = capsys.readouterr().out
    assert out == f"{tmp_path / 'cdk.json'} is valid: dev, staging, prod\n"


def test_file_flag_names_the_file_it_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "other.json", with_pager(project_context()))
    assert _validate("--file", str(path)) == 0
    assert capsys.readouterr().out.startswith(f"{path} is valid: ")


def test_a_missing_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert _validate() == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{tmp_path / 'cdk.json'}: no such file" in err


@pytest.mark.parametrize(("text", "expected"), [
    ("", "the file is empty"),
    ("  \n\n", "the file is empty"),
    ('{\n  "context": {\n    "defaults": {,\n  }\n}\n', "invalid JSON at line 3 column 18: Expecting property name"),
    ('{"app": "python app.py"}', 'no "context" key; allowed: a "context" object'),
    ('{"context": []}', '"context" is a list'),
    ("[1, 2]", "the top level is a JSON list"),
])
def test_unusable_files_are_one_line(text: str, expected: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cdk.json"
    path.write_text(text)
    assert _validate("--file", str(path)) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"mlops config validate: {path}: ") and expected in err


def test_a_wrong_setting_names_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = project_context()
    context["environments"]["prod"]["serving"]["champion"]["min_instances"] = 1
    assert _validate("--file", str(_write(tmp_path / "cdk.json", context))) == 2
    assert "environments.prod.serving.champion.min_instances is 1; allowed: at least 2" in _one_line(
        capsys.readouterr().err)


def test_a_production_environment_without_pager_subscribers_warns(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "cdk.json", project_context())  # the shipped file pages nobody
    assert _validate("--file", str(path)) == 0
    captured = capsys.readouterr()
    assert "warning: environments.prod.monitoring.alarms.page has no subscribers" in captured.err
    assert "staging" not in captured.err and "dev" not in captured.err
    assert captured.out == f"{path} is valid: dev, staging, prod (1 warning(s))\n"


def test_strict_turns_warnings_into_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "cdk.json", project_context())
    assert _validate("--file", str(path), "--strict") == 2
    assert "1 warning(s) with --strict; the first: environments.prod.monitoring.alarms.page" in \
        capsys.readouterr().err
    assert _validate("--file", str(_write(tmp_path / "paged.json", with_pager(project_context()))), "--strict") == 0


def test_an_https_secret_counts_as_a_subscriber(tmp_path: Path) -> None:
    context = project_context()
    context["environments"]["prod"].setdefault("monitoring", {})["alarms"] = {
        "page": {"https_secret_names": ["oncall/url"]}}
    assert _validate("--file", str(_write(tmp_path / "cdk.json", context)), "--strict") == 0


def test_the_environment_serving_production_is_production() -> None:
    context = project_context()
    environments = context["environments"]
    environments["live"] = environments.pop("prod")
    for model in context["models"].values():
        if "prod" in model.get("environments", {}):
            model["environments"]["live"] = model["environments"].pop("prod")
    environments["live"].pop("production")
    environments["live"]["serving"]["champion"]["min_instances"] = 1
    environments["live"]["serving"]["challenger"]["min_instances"] = 1
    environments["live"]["serving"]["served_stages"] = ["Production"]
    environments["staging"].setdefault("serving", {})["served_stages"] = ["Staging"]
    environments["dev"].setdefault("serving", {})["served_stages"] = []
    configs = load_environments(context)
    assert [name for name, config in configs.items() if is_production(config)] == ["live"]
    assert [w for config in configs.values() for w in config_warnings(config)] == [
        "environments.live.monitoring.alarms.page has no subscribers (emails, https, https_secret_names are "
        "empty): production alarms would page nobody"]


def test_warnings_come_from_one_hook_that_stacks_can_extend(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlsettings.config

    config = load_environments(with_pager(project_context()))["dev"]
    assert config_warnings(config) == []
    monkeypatch.setattr(mlsettings.config, "config_warnings", lambda c: [f"{c.name}: from stacks"], raising=False)
    assert config_warnings(config) == ["dev: from stacks"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c: c["defaults"].setdefault("lambda", {}).update(account_concurrency_quota=200),
     "lambda.account_concurrency_quota is 200; allowed: at least "),
    (lambda c: c["environments"]["prod"].setdefault("lambda", {}).update(account_concurrency_quota=2000),
     "lambda.account_concurrency_quota are [2000, 3000]; allowed: one value"),
    (lambda c: c["defaults"]["monitoring"]["alarms"]["page"].update(https=["https://user:secret@example.com/hook"]),
     "monitoring.alarms.page.https is ['https://user:secret@example.com/hook']; allowed: a list of an https:// URL "
     "without credentials"),
    (lambda c: c["models"]["breast-cancer"].update(schema_file="cdk.json"),
     "schema_file is 'cdk.json'; allowed: a data schema file"),
], ids=["quota below demand", "unequal quotas", "credentials in a URL", "JSON that is not a schema"])
def test_validate_refuses_what_synth_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any,
                                            expected: str) -> None:
    """Every check synth runs runs here too (they are one function, mlsettings.config.load_environments): each of
    these files passed `config validate` and failed `cdk synth` before (issue #22)."""
    import copy

    from stacks.app_builder import build_app

    context = copy.deepcopy(project_context())
    change(context)
    assert _validate("--file", str(_write(tmp_path / "cdk.json", context))) == 2
    assert expected in _one_line(capsys.readouterr().err)
    import aws_cdk as cdk

    from mlsettings.config import ConfigError

    with pytest.raises(ConfigError, match=None) as refused:  # synth refuses the same, with the same words
        build_app(cdk.App(context={"aws:cdk:bundling-stacks": []}), context=context, with_nag=False)
    assert expected.split("; allowed", maxsplit=1)[0].split(".", 1)[-1] in str(refused.value)


def test_a_wrong_setting_names_its_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The error points at the text: the environment's own key, or the defaults it inherits."""
    context = project_context()
    path = _write(tmp_path / "cdk.json", context)
    text = path.read_text()
    text = text.replace('"p99_latency_ms": 150', '"p99_latency_ms": -150')
    path.write_text(text)
    assert _validate("--file", str(path)) == 2
    err = _one_line(capsys.readouterr().err)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if '"p99_latency_ms": -150' in row)
    column = text.splitlines()[line - 1].index("-150") + 1
    assert f"{path}:{line}:{column}: environments.prod.serving.sla.p99_latency_ms is -150;" in err
    inherited = text.replace('"instance_type": "ml.g5.xlarge"', '"instance_type": "ml.g5.huge"')
    path.write_text(inherited)
    assert _validate("--file", str(path)) == 2
    line = next(i for i, row in enumerate(inherited.splitlines(), 1) if "ml.g5.huge" in row)
    assert f"{path}:{line}:" in capsys.readouterr().err
