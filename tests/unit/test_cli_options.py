"""The CLI's surface: help on every option, the same --env/--region/--profile on every AWS-facing command,
lowercase stage names, --version from the package metadata."""

from __future__ import annotations

import argparse
from importlib.metadata import version

import pytest

from mlops import cli
from mlops.commands import registry_cmds, serving_cmds

AWS_FACING = ("status", "promote", "rollback", "promote-challenger", "shift-weights", "ab-report", "batch-score",
              "train", "drift")


def _subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(_subcommands(sub, f"{prefix}{name} "))
    return found


SUBCOMMANDS = _subcommands(cli.build_parser())


def test_every_command_is_found() -> None:
    assert set(AWS_FACING) | {"config show", "config validate", "synth", "baseline", "demo"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_every_option_has_help(name: str) -> None:
    missing = [action.option_strings[0] for action in SUBCOMMANDS[name]._actions
               if action.option_strings and not action.help]
    assert missing == [], f"mlops {name}: options without help: {missing}"


@pytest.mark.parametrize("name", AWS_FACING)
def test_aws_facing_commands_take_env_region_and_profile(name: str) -> None:
    options = {action.option_strings[0]: action for action in SUBCOMMANDS[name]._actions if action.option_strings}
    assert {"--env", "--region", "--profile"} <= set(options)
    assert options["--env"].metavar == "NAME"


def test_promote_stage_names_match_the_registry_code() -> None:
    from mlops import registry_ops

    assert set(registry_cmds.TARGET_STAGE_NAMES) == set(registry_ops.TARGET_STAGES)


@pytest.mark.parametrize(("spelling", "parsed"), [("production", "production"), ("Production", "production"),
                                                  ("staging", "staging"), ("Staging", "staging")])
def test_stage_spellings_are_lowercase_with_the_old_ones_as_aliases(spelling: str, parsed: str) -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["promote-challenger", "--env", "prod", "--stage", spelling]).stage == parsed
    assert parser.parse_args(["promote", "--env", "prod", "--version", "1", "--to", spelling]).to == parsed
    assert serving_cmds.SERVED_STAGES[parsed] == parsed.capitalize()


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"mlops {version('serverless-mlops')}\n"


def test_local_training_refuses_aws_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["train", "--local", "--region", "eu-west-1"]) == 2
    assert "--local runs on moto and takes neither" in capsys.readouterr().err


def test_synth_finds_the_repository_where_the_gate_runner_does() -> None:
    from mlops.commands import synth_cmd
    from mlops.security_gates import REPO_ROOT

    assert synth_cmd.REPO_ROOT == REPO_ROOT
