"""`mlops cost` on the real synthesized cloud assembly: what it counts is what the templates hold, every
environment of the shipped cdk.json gets an estimate, and bad input ends in one line with exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mlops import cli
from mlsettings.config import load_environments
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL
from tests.infra.conftest import ENVIRONMENTS, SynthesizedApp

REPO = Path(__file__).resolve().parents[2]


def _cost(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["cost", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _count(synthesized: SynthesizedApp, env: str, resource_type: str) -> int:
    stage = synthesized.stages[env]
    from aws_cdk.assertions import Template

    return sum(len(Template.from_stack(stack).find_resources(resource_type)) for stack in stage.node.children
               if hasattr(stack, "template_options"))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_gets_an_estimate_of_what_its_templates_hold(
        synthesized: SynthesizedApp, capsys: pytest.CaptureFixture[str], env: str) -> None:
    code, out, err = _cost(capsys, "--env", env, "--json", "--cdk-out", str(synthesized.outdir))
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    config = load_environments(sampled_project_context())[env]
    assert document["environment"] == env and document["models"] == list(config.model_names)  # one scope each
    lines = {(line["scope"], line["item"]): line for line in document["lines"]}
    # every model's stack and the shared ones: each alarm and key counted once, in its scope
    alarms = sum(int(line["quantity"].split()[0]) for line in document["lines"] if line["item"] == "CloudWatch alarms")
    assert alarms == _count(synthesized, env, "AWS::CloudWatch::Alarm")
    assert lines["shared", "KMS keys"]["quantity"] == f"{_count(synthesized, env, 'AWS::KMS::Key')} keys"
    # MODEL's lines, from its view of the environment (its serving settings over the environment's)
    view = config.for_model(MODEL)
    endpoints = sorted(item for scope, item in lines if scope == MODEL and item.startswith("endpoint "))
    if view.serving.served_stages:
        champion = view.serving.champion
        assert lines[MODEL, f"endpoint Champion ({champion.instance_type})"]["quantity"].startswith(
            f"{champion.min_instances}-{champion.max_instances} instances")
        assert len(endpoints) == (2 if view.serving.challenger_enabled else 1)
    else:
        assert endpoints == [] and any(n.startswith(f"{MODEL}: ") and "never creates the endpoint" in n
                                       for n in document["notes"])
    trained = [item for scope, item in lines
               if scope == MODEL and item.startswith(("training step", "processing step"))]
    assert bool(trained) == config.is_registry  # only the registry environment runs the pipeline
    assert any(scope == MODEL and item.startswith(f"Lambda runs of Model-{MODEL}/") and "DriftSchedule" in item
               for scope, item in lines)
    for line in document["lines"]:  # unknown is unknown, never 0
        assert (line["at_min"] is None) == bool(line["unknown"])
    text_code, text, _ = _cost(capsys, "--env", env, "--cdk-out", str(synthesized.outdir))
    assert text_code == 0 and f"Monthly estimate for {env}" in text and "regions covered: eu-west-1, us-east-1" in text
    priced = [line for line in document["lines"] if not line["unknown"]]
    assert ("== price sources" in text) == bool(priced)


def test_the_registry_environment_prices_its_training_from_the_synthesized_pipeline(
        synthesized: SynthesizedApp, capsys: pytest.CaptureFixture[str]) -> None:
    """dev in eu-west-1: Train on ml.g5.xlarge at $1.57/h (the vendored table), at most 1 h a run (3600 s,
    training.max_run_seconds), 730/168 runs a month (rate(7 days)): 6.82."""
    _, out, _ = _cost(capsys, "--env", "dev", "--json", "--cdk-out", str(synthesized.outdir))
    lines = {(line["scope"], line["item"]): line for line in json.loads(out)["lines"]}
    train = lines[MODEL, "training step Train (ml.g5.xlarge x1)"]
    assert train["at_max"] == round(730 / 168 * 1.57, 2) and "spot" in train["basis"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--env", "qa"], "--env 'qa' is not an environment"),
    (["--env", "dev", "--cdk-out", "/nonexistent"], "/nonexistent/assembly-dev has no synthesized templates: run "
                                                    "`make synth` first"),
    ([], "--env NAME is required"),
    (["--env", "dev", "--prices", "/nonexistent.json"], "/nonexistent.json: no such price table"),
    (["--compare", "/nonexistent"], "/nonexistent/cdk.json is missing"),
])
def test_bad_input_exits_2_with_one_line(synthesized: SynthesizedApp, capsys: pytest.CaptureFixture[str],
                                         argv: list[str], message: str) -> None:
    if "--cdk-out" not in argv and "--compare" not in argv:
        argv = [*argv, "--cdk-out", str(synthesized.outdir)]
    code, out, err = _cost(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("mlops cost: ") and message in err, err


def test_compare_main_with_the_change_for_the_pull_request_comment(
        synthesized: SynthesizedApp, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A 'main' checkout whose cdk.json gives staging one more Champion instance at most, with the same assembly:
    the table shows both totals; the diffs of `make diff` are appended."""
    base = tmp_path / "base"
    base.mkdir()
    shutil.copytree(REPO / "pipelines" / "schemas", base / "pipelines" / "schemas")
    context = json.loads((REPO / "cdk.json").read_text(encoding="utf-8"))
    context["context"]["environments"]["staging"]["serving"]["champion"]["max_instances"] = 4
    (base / "cdk.json").write_text(json.dumps(context), encoding="utf-8")
    (base / "cdk.out").symlink_to(synthesized.outdir)
    plan = tmp_path / "plan"
    plan.mkdir()
    (plan / "diff-prod.txt").write_text("Stack prod/Serving\nThere were no differences\n", encoding="utf-8")
    code, out, err = _cost(capsys, "--compare", str(base), "--cdk-out", str(synthesized.outdir),
                           "--with-diffs", str(plan))
    assert code == 0, err
    assert out.startswith("### Monthly cost: main → this change")
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:4]] == ["| dev", "| prod", "| staging"]
    # one line per model whose staging Champion follows the environment's (a model's own setting would win)
    before = load_environments(context["context"])["staging"]
    after = load_environments(sampled_project_context())["staging"]
    changed = [name for name in after.model_names
               if before.for_model(name).serving.champion != after.for_model(name).serving.champion]
    assert changed and f"<summary>staging: {len(changed)} line(s) changed</summary>" in out
    assert "<summary>cdk diff: prod</summary>" in out and "There were no differences" in out


def test_compare_without_mains_assembly_shows_the_change_and_says_why(
        synthesized: SynthesizedApp, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The plan job lets main's synth fail (continue-on-error): the comment still shows the change's estimate."""
    (tmp_path / "cdk.json").write_text((REPO / "cdk.json").read_text(encoding="utf-8"), encoding="utf-8")
    code, out, err = _cost(capsys, "--compare", str(tmp_path), "--cdk-out", str(synthesized.outdir))
    assert code == 0, err
    assert "| dev | (no estimate) |" in out
    assert f"main's estimate of dev is missing: {tmp_path}/cdk.out/assembly-dev has no synthesized templates" in out
