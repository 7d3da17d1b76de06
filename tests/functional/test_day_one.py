"""Day-one rough edges, tried as a new user would on a fresh clone (issue #22): each either works or ends in exit
2 and one line naming the value — never a traceback."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops import cli
from testkit.serving_world import MODEL

REPO = Path(__file__).resolve().parents[2]
MLOPS = [sys.executable, "-m", "mlops.cli"]


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _run(*argv: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    return subprocess.run([*MLOPS, *argv], cwd=cwd, env=environment, capture_output=True, text=True, check=False,
                          timeout=600)


@pytest.fixture(scope="module")
def malformed_aws_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("aws") / "config"
    path.write_text("[profile broken\nregion = eu-west-1\n")
    return path


@pytest.mark.parametrize("variables", ["unknown profile", "malformed config"])
def test_offline_commands_ignore_the_operators_aws_set_up(variables: str, malformed_aws_config: Path) -> None:
    env = {"AWS_PROFILE": "no-such-profile"} if variables == "unknown profile" else {
        "AWS_CONFIG_FILE": str(malformed_aws_config)}
    validated = _run("config", "validate", env=env)
    assert validated.returncode == 0 and "is valid" in validated.stdout, validated.stderr


@pytest.mark.slow
def test_a_local_training_run_ignores_the_operators_aws_set_up(malformed_aws_config: Path, tmp_path: Path) -> None:
    """`mlops train --local` runs on moto: an unknown profile and a malformed ~/.aws/config are not its business."""
    trained = _run("train", "--local", "--model", MODEL, "--num-round", "30", "--workdir", str(tmp_path / "run"),
                   env={"AWS_PROFILE": "no-such-profile", "AWS_CONFIG_FILE": str(malformed_aws_config)})
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "registered: version" in trained.stdout


@pytest.mark.parametrize(("argv", "expected"), [
    (["promote", "--env", "prod", "--version", "-1", "--to", "production"], "--version is -1; allowed: an integer"),
    (["promote", "--env", "prod", "--version", "v3", "--to", "staging"], "--version is 'v3'"),
    (["rollback", "--env", "prod", "--to-version", "0"], "--to-version is 0"),
    (["shift-weights", "--env", "prod", "--challenger-percent", "150"], "--challenger-percent is 150; allowed: an "
                                                                         "integer from 0 to 100"),
    (["ab-report", "--env", "prod", "--hours", "0"], "--hours is 0"),
    (["train", "--local", "--model", MODEL, "--num-round", "0"], "--num-round is 0"),
    (["train", "--local", "--model", MODEL, "--data-uri", "s3://bucket/training/"],
     "--data-uri s3://bucket/training/ names data in S3"),
    (["train", "--local", "--model", MODEL, "--workdir", "/dev/null/run"], "--workdir /dev/null/run cannot be created"),
])
def test_operator_values_are_checked_before_any_aws_call(argv: list[str], expected: str,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials exist here and no AWS call may be made: the value is refused first."""
    from botocore.client import BaseClient

    def no_aws(*args: object, **kwargs: object) -> None:
        raise AssertionError("an AWS call was made before the value was checked")

    monkeypatch.setattr(BaseClient, "_make_api_call", no_aws)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert cli.main(argv) == 2
    assert expected in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(("content", "expected"), [
    ("mean radius,diagnos\xefs\n1,2\n".encode("latin-1"), "not UTF-8 text (byte 0xef on line 1, offset 19)"),
    (gzip.compress(b"a,b\n1,2\n"), "gzip-compressed data, not CSV text"),
], ids=["latin-1", "gzip named .csv"])
def test_training_data_that_is_not_utf8_csv_fails_validation_naming_the_file(content: bytes, expected: str,
                                                                            tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(content)
    private_tmp = tmp_path / "tmp"  # the run's own temporary directory: other tests' runs cannot appear in it
    private_tmp.mkdir()
    trained = _run("train", "--local", "--model", MODEL, "--data", str(data), env={"TMPDIR": str(private_tmp)})
    assert trained.returncode == 2 and "Traceback" not in trained.stderr, trained.stderr[-2000:]
    assert expected in trained.stdout and "data.csv" in trained.stdout
    # the run's temporary folder is removed on every path, a failed one included
    assert not list(private_tmp.glob("mlops-train-*"))


def test_output_piped_into_head_ends_without_a_traceback() -> None:
    pipe = subprocess.run(f"{sys.executable} -m mlops.cli config show --env dev | head -1", shell=True,
                          cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert pipe.stdout.startswith("name") and "BrokenPipe" not in pipe.stderr and "Traceback" not in pipe.stderr
