"""Every AWS-facing command reaches AWS through one session factory: region from cdk.json unless --region,
--profile / AWS_PROFILE, --env checked against cdk.json, and botocore's set-up errors as one line, exit 2.

The error cases use real botocore where that needs no network (no credentials, an unknown profile, a
refused connection to a closed local port) and a Stubber where only AWS could answer (denied, unknown or
expired credentials)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlops import cli, project_config
from mlops.aws_session import AwsSession
from mlsettings.config import load_environments, project_context
from testkit.serving_world import MODEL

CONFIGS = load_environments(project_context())
# (command, the arguments it needs besides --env) for every AWS-facing command
AWS_COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("status", ()),
    ("promote", ("--version", "1", "--to", "staging")),
    ("rollback", ()),
    ("promote-challenger", ()),
    ("shift-weights", ("--challenger-percent", "10")),
    ("ab-report", ()),
    ("batch-score", ("--input", "s3://bucket/batch/")),
    ("train", ()),
    ("models", ()),
)
PER_MODEL_COMMANDS = tuple(c for c in AWS_COMMANDS if c[0] != "models")
SHELL_REGION = "us-west-2"  # a shell default that is nobody's cdk.json region


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No credential source at all: env keys removed, empty config files, no instance metadata."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "aws-config"
    config.write_text("[profile ops]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config


@pytest.fixture
def created_clients(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every client a command creates through the factory, in order."""
    clients: list[Any] = []
    original = AwsSession.client

    def recording(self: AwsSession, service: str) -> Any:
        client = original(self, service)
        clients.append(client)
        return client

    monkeypatch.setattr(AwsSession, "client", recording)
    return clients


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------ region and --env


@pytest.mark.parametrize("env", sorted(CONFIGS))
def test_clients_get_the_environment_region_from_cdk_json(env: str, created_clients: list[Any],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", SHELL_REGION)
    with mock_aws():
        code = cli.main(["status", "--env", env, "--model", MODEL])
    assert code == 2  # nothing is deployed in moto: the published names are missing
    assert "publishes no '/mlops/" in capsys.readouterr().err
    assert created_clients, "status created no client through the factory"
    assert {client.meta.region_name for client in created_clients} == {CONFIGS[env].region}


def test_a_region_set_in_cdk_json_is_the_one_used(tmp_path: Path, created_clients: list[Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    context = project_context()
    for environment in context["environments"].values():  # consumers share their registry's region
        environment["region"] = "ca-central-1"
    other = tmp_path / "cdk.json"
    other.write_text(json.dumps({"context": context}))
    monkeypatch.setattr(project_config, "PROJECT_FILE", other)
    monkeypatch.setenv("AWS_DEFAULT_REGION", SHELL_REGION)
    with mock_aws():
        assert cli.main(["rollback", "--env", "staging", "--model", MODEL]) == 2
    assert created_clients
    assert {client.meta.region_name for client in created_clients} == {"ca-central-1"}


def test_region_flag_overrides_cdk_json(created_clients: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", SHELL_REGION)
    with mock_aws():
        cli.main(["shift-weights", "--env", "prod", "--model", MODEL, "--region", "ap-southeast-2",
                  "--challenger-percent", "5"])
    assert created_clients
    assert {client.meta.region_name for client in created_clients} == {"ap-southeast-2"}


def test_train_in_aws_uses_the_factory_and_the_environment_region(created_clients: list[Any],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", SHELL_REGION)
    with mock_aws():
        assert cli.main(["train", "--env", "staging", "--model", MODEL]) == 2  # no published pipeline in moto
    assert {client.meta.region_name for client in created_clients} == {CONFIGS["staging"].region}


@pytest.mark.parametrize(("command", "extra"), AWS_COMMANDS)
def test_unknown_environment_lists_the_valid_ones(command: str, extra: tuple[str, ...],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([command, "--env", "prdo", *extra]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"mlops {command}: --env 'prdo' is not an environment in " in err
    assert err.rstrip().endswith("valid: dev, prod, staging")


@pytest.mark.parametrize(("command", "extra"), [c for c in AWS_COMMANDS if c[0] != "train"])
def test_env_is_required_by_every_aws_command(command: str, extra: tuple[str, ...],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, *extra])
    assert exit_.value.code == 2
    assert "--env" in capsys.readouterr().err


@pytest.mark.parametrize(("command", "extra"), PER_MODEL_COMMANDS)
def test_model_is_required_when_the_environment_has_several(command: str, extra: tuple[str, ...],
                                                            capsys: pytest.CaptureFixture[str],
                                                            created_clients: list[Any]) -> None:
    names = CONFIGS["prod"].model_names
    assert len(names) > 1  # the shipped cdk.json has several models
    assert cli.main([command, "--env", "prod", *extra]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"mlops {command}: --model is required: environment 'prod' has the models {', '.join(names)}" in err
    assert created_clients == []  # a configuration check: refused before any AWS call


@pytest.mark.parametrize(("command", "extra"), PER_MODEL_COMMANDS)
def test_unknown_model_lists_the_valid_ones(command: str, extra: tuple[str, ...],
                                            capsys: pytest.CaptureFixture[str], created_clients: list[Any]) -> None:
    assert cli.main([command, "--env", "prod", "--model", "fraud", *extra]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"mlops {command}: --model 'fraud' is not a model in " in err
    assert err.rstrip().endswith(f"valid: {', '.join(CONFIGS['prod'].model_names)}")
    assert created_clients == []


def test_train_without_env_or_local_is_refused(capsys: pytest.CaptureFixture[str],
                                               created_clients: list[Any]) -> None:
    assert cli.main(["train"]) == 2
    assert "give --env NAME to start the deployed pipeline in AWS, or --local" in _one_line(capsys.readouterr().err)
    assert created_clients == []  # before: it started the dev pipeline in whatever account the shell reached


def test_account_in_cdk_json_must_match_the_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    context = project_context()
    for environment in context["environments"].values():  # all given, or all null
        environment["account"] = "111122223333"
    other = tmp_path / "cdk.json"
    other.write_text(json.dumps({"context": context}))
    monkeypatch.setattr(project_config, "PROJECT_FILE", other)
    with mock_aws():  # moto's caller is account 123456789012
        assert cli.main(["status", "--env", "prod", "--model", MODEL]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "the credentials are for account 123456789012" in err
    # status acts on prod's registry environment: its account is the one the credentials must be for
    assert "environment 'dev' (the registry environment of 'prod': its ledger, versions and promotion bus live " \
           "there) is account 111122223333 in cdk.json; use --profile" in err


# ------------------------------------------------------------------ botocore errors → one line, exit 2


def test_no_credentials_names_the_profile_and_region_to_fix(no_credentials: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--env", "prod", "--model", MODEL]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("mlops status: no usable AWS credentials: pass --profile NAME (or set AWS_PROFILE)")
    assert f"region {CONFIGS['dev'].region} (from cdk.json environments.dev.region)" in err
    assert "the registry of environment 'prod' (environment 'dev') needs the account of your credentials" in err


def test_s3_capture_without_credentials_is_one_line(no_credentials: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from tests.functional.test_drift_cli_config import write_baseline

    baseline = write_baseline(tmp_path)
    assert cli.main(["drift", "--baseline", str(baseline), "--capture", "s3://capture/endpoint/"]) == 2
    assert "mlops drift: no usable AWS credentials" in _one_line(capsys.readouterr().err)


def test_unknown_profile_lists_the_configured_ones(no_credentials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["rollback", "--env", "staging", "--model", MODEL, "--profile", "opps"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "AWS profile 'opps' is not in ~/.aws/config or ~/.aws/credentials (profiles there: ops)" in err
    assert "profile 'opps' (from --profile)" in err


def test_unknown_profile_from_the_environment_variable(no_credentials: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_PROFILE", "gone")
    assert cli.main(["ab-report", "--env", "dev", "--model", MODEL]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "AWS profile 'gone' is not in" in err and "(from AWS_PROFILE)" in err


def test_unreachable_endpoint_names_the_url_and_region(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # A closed local port: botocore's real connection error, no traffic leaves the machine.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert cli.main(["status", "--env", "dev", "--model", MODEL, "--region", "eu-north-1"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert 'cannot reach "http://127.0.0.1:9/"' in err or "cannot reach http://127.0.0.1:9" in err
    assert "region eu-north-1 (from --region)" in err


def test_no_region_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def no_region(self: AwsSession, service: str) -> Any:
        raise botocore.exceptions.NoRegionError()

    monkeypatch.setattr(AwsSession, "client", no_region)
    assert cli.main(["batch-score", "--env", "dev", "--model", MODEL, "--input", "s3://b/p/"]) == 2
    assert "mlops batch-score: no AWS region: pass --region, set AWS_DEFAULT_REGION" in _one_line(
        capsys.readouterr().err)


@pytest.mark.parametrize(("code", "expected"), [
    ("AccessDeniedException", "access denied on GetParametersByPath: User: arn:aws:iam::1:user/x is not authorized"),
    ("AccessDenied", "access denied on GetParametersByPath"),
    ("UnrecognizedClientException", "AWS does not recognise the credentials (UnrecognizedClientException on "
                                    "GetParametersByPath)"),
    ("ExpiredToken", "the AWS session has expired (ExpiredToken on GetParametersByPath): refresh it"),
    ("ExpiredTokenException", "the AWS session has expired (ExpiredTokenException"),
])
def test_refused_credentials_are_one_line(code: str, expected: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    original = AwsSession.client

    def stubbed(self: AwsSession, service: str) -> Any:
        client = original(self, service)
        stubber = Stubber(client)
        stubber.add_client_error("get_parameters_by_path", service_error_code=code,
                                 service_message="User: arn:aws:iam::1:user/x is not authorized", http_status_code=400)
        stubber.activate()
        return client

    monkeypatch.setattr(AwsSession, "client", stubbed)
    assert cli.main(["promote", "--env", "prod", "--model", MODEL, "--version", "3", "--to", "production"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("mlops promote: ") and expected in err
    assert f"the registry of environment 'prod' (environment 'dev') needs the account of your credentials " \
           f"(cdk.json names none), region {CONFIGS['dev'].region}" in err


def test_other_aws_errors_are_not_disguised(monkeypatch: pytest.MonkeyPatch) -> None:
    original = AwsSession.client

    def stubbed(self: AwsSession, service: str) -> Any:
        client = original(self, service)
        stubber = Stubber(client)
        stubber.add_client_error("get_parameters_by_path", service_error_code="ThrottlingException")
        stubber.activate()
        return client

    monkeypatch.setattr(AwsSession, "client", stubbed)
    with pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"):
        cli.main(["status", "--env", "dev", "--model", MODEL])


def test_profile_flag_reaches_boto3(no_credentials: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--profile is handed to boto3 (its region then does not win over cdk.json's)."""
    from mlops.aws_session import aws_session

    monkeypatch.delenv("AWS_DEFAULT_REGION")
    assert boto3.Session(profile_name="ops").region_name == "eu-central-1"
    args = cli.build_parser().parse_args(["status", "--env", "dev", "--model", MODEL, "--profile", "ops"])
    session = aws_session(args)
    assert session._session.profile_name == "ops"
    assert session.client("ssm").meta.region_name == CONFIGS["dev"].region
