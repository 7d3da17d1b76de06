"""`make deploy|destroy ENV=x` start with mlops.deploy_preflight: one clear line and exit 2 for a wrong
environment name, missing credentials or credentials of another account (moto's STS stands in for AWS)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from mlops import deploy_preflight, project_config

REPO = Path(__file__).resolve().parents[2]


def test_an_unknown_environment_is_named_with_the_valid_ones(capsys: Any) -> None:
    assert deploy_preflight.main(["production"]) == 2
    assert "ENV is 'production'; allowed: one of ['dev', 'prod', 'staging']" in capsys.readouterr().err


def test_missing_credentials_are_one_line_not_a_traceback(tmp_path: Path) -> None:
    # A real process with no credentials anywhere (and no instance metadata): botocore refuses before any call.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    ran = subprocess.run([sys.executable, "-m", "mlops.deploy_preflight", "dev"], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=60, check=False)
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [ran.stderr.strip()]  # one line
    assert "no AWS credentials" in ran.stderr and "Traceback" not in ran.stderr


def test_an_unknown_profile_is_named(capsys: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    assert deploy_preflight.main(["dev", "--profile", "ops"]) == 2
    assert "AWS profile 'ops' (PROFILE=ops) is not configured" in capsys.readouterr().err
    monkeypatch.setenv("AWS_PROFILE", "from-the-environment")  # named too, not None
    assert deploy_preflight.main(["dev"]) == 2
    assert "AWS profile 'from-the-environment' (AWS_PROFILE=from-the-environment)" in capsys.readouterr().err


def test_a_malformed_aws_config_file_is_one_line(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    (tmp_path / "config").write_text("[profile broken\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    assert deploy_preflight.main(["dev"]) == 2
    err = capsys.readouterr().err
    assert f"the AWS config file {tmp_path / 'config'} cannot be parsed" in err and err.count("\n") == 1


def test_credentials_of_another_account_are_refused(capsys: Any, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    document = json.loads((REPO / "cdk.json").read_text())
    for name, account in (("dev", "109876543210"), ("staging", "210987654321"), ("prod", "310987654321")):
        document["context"]["environments"][name]["account"] = account
    (tmp_path / "cdk.json").write_text(json.dumps(document))
    monkeypatch.setattr(project_config, "PROJECT_FILE", tmp_path / "cdk.json")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():  # moto's STS answers account 123456789012
        assert deploy_preflight.main(["staging"]) == 2
    assert "puts staging in account 210987654321, but the credentials are for 123456789012" in \
        capsys.readouterr().err


def test_matching_credentials_print_the_selector_and_target(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        assert deploy_preflight.main(["dev"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("deploying dev/* to 123456789012/") and "arn:aws:" in out


def test_the_bootstrap_target_is_the_environments_account_and_region(capsys: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """`make bootstrap-account ENV=dev` bootstraps what the preflight prints: the credentials' account (cdk.json
    names none) in the environment's region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        assert deploy_preflight.main(["dev", "--bootstrap-target"]) == 0
    assert capsys.readouterr().out == "aws://123456789012/eu-west-1\n"
