"""The "bring your own container" conformance check (issue #26): the bundled example image passes for each kind on
the bundled data; broken copies fail with the one-line finding of the rule they break; the programs have no
network; the CLI refuses bad input with one line (exit 2)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.conformance_inputs import ImageInputs, prepare_inputs
from mlplatform.conformance import byoc_check
from mlplatform.conformance.byoc_check import CheckLimits, ConformanceResult, SandboxUnavailable, check_image
from mlplatform.conformance.container_contract import count_rows

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "byoc"
DATASETS = {"breast_cancer": "binary", "wine": "multiclass", "diabetes": "regression"}
QUICK = CheckLimits(train_seconds=60, ping_startup_seconds=3, invocation_seconds=10, stop_grace_seconds=5)

_REASON = byoc_check.sandbox_available()
needs_sandbox = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


@pytest.fixture(scope="module")
def wine_inputs(tmp_path_factory: pytest.TempPathFactory) -> ImageInputs:
    return _inputs("wine", tmp_path_factory.mktemp("wine"))


def _inputs(name: str, workdir: Path) -> ImageInputs:
    return prepare_inputs(schema_path=REPO / "pipelines/schemas" / f"{name}.json",
                          data_csv=REPO / "pipelines/data" / f"{name}.csv", workdir=workdir)


def _check(program_dir: Path, inputs: ImageInputs, limits: CheckLimits = QUICK) -> ConformanceResult:
    return check_image(program_dir, channels=inputs.channels, channel_content_types=inputs.channel_content_types,
                       hyperparameters=inputs.hyperparameters, requests=inputs.requests,
                       instance_type=inputs.instance_type, limits=limits)


def _image(tmp_path: Path, **programs: str) -> Path:
    """A copy of the example image with some programs replaced (``serve_example`` keeps the original serve)."""
    folder = tmp_path / "image"
    shutil.copytree(EXAMPLE, folder)
    shutil.copy2(folder / "serve", folder / "serve_example")
    for name, source in programs.items():
        path = folder / name
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        path.chmod(0o755)
    return folder


def _messages(result: ConformanceResult) -> list[str]:
    return [finding.message for finding in result.findings]


# ------------------------------------------------------------------------------------------- the example passes
@needs_sandbox
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_the_example_image_conforms_for_every_kind(dataset: str, tmp_path: Path) -> None:
    inputs = _inputs(dataset, tmp_path / "inputs")
    result = _check(EXAMPLE, inputs)
    assert result.findings == [], _messages(result)
    assert result.model_files == ["feature_names.json", "model.json", "schema.json"]
    assert [answer["status"] for answer in result.serve["invocations"]] == [200, 200]
    batch = result.serve["invocations"][1]["body"].splitlines()
    assert len(batch) == inputs.requests[1].rows > 1
    if DATASETS[dataset] == "multiclass":  # the class, then one probability per class
        assert all(len(line.split(",")) == 4 for line in batch)


@needs_sandbox
def test_the_programs_get_the_pipelines_channels_and_hyperparameters(wine_inputs: ImageInputs,
                                                                    tmp_path: Path) -> None:
    """A train that copies /opt/ml/input into its model shows what SageMaker's files hold: hyperparameters.json of
    strings (the Train step's, without the script-mode sagemaker_* keys), inputdataconfig.json with the Train
    step's channels and content types, resourceconfig.json, and Preprocess's files per channel."""
    image = _image(tmp_path, train="""
        #!/usr/bin/env python3
        import shutil
        shutil.copytree("/opt/ml/input", "/opt/ml/model/input")
    """)
    check = tmp_path / "check"
    check_image(image, channels=wine_inputs.channels, channel_content_types=wine_inputs.channel_content_types,
                hyperparameters=wine_inputs.hyperparameters, requests=[], limits=QUICK, workdir=check)
    seen = check / "results-train/model/input"
    hyperparameters = json.loads((seen / "config/hyperparameters.json").read_text())
    assert hyperparameters["num_round"] == "200" and hyperparameters["objective"] == "multi:softprob"
    assert all(isinstance(v, str) for v in hyperparameters.values())
    assert not any(name.startswith("sagemaker_") for name in hyperparameters)
    assert json.loads((seen / "config/inputdataconfig.json").read_text()) == {
        name: {"ContentType": content_type, "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
               "RecordWrapperType": "None"}
        for name, content_type in {"train": "text/csv", "validation": "text/csv", "test": "text/csv",
                                   "metadata": "application/json"}.items()}
    assert json.loads((seen / "config/resourceconfig.json").read_text())["hosts"] == ["algo-1"]
    assert sorted(p.name for p in (seen / "data").iterdir()) == ["metadata", "test", "train", "validation"]
    assert (seen / "data/metadata/schema.json").is_file() and (seen / "data/train/train.csv").is_file()


# ------------------------------------------------------------------------------------- broken copies are caught
@needs_sandbox
def test_a_train_that_writes_no_model(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, train="""
        #!/usr/bin/env python3
        print("trained, saved nothing")
    """)
    assert _messages(_check(image, wine_inputs)) == ["train wrote no model: /opt/ml/model is empty"]


@needs_sandbox
def test_a_failing_train_reports_its_failure_file(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, train="""
        #!/usr/bin/env python3
        import sys
        with open("/opt/ml/output/failure", "w") as failure:
            failure.write("the label column is missing\\nmore detail\\n")
        sys.exit(1)
    """)
    result = _check(image, wine_inputs)
    assert _messages(result) == ["train exited with 1: the label column is missing"]
    assert result.serve == {}  # nothing is served without a model


@needs_sandbox
def test_a_failing_train_without_a_failure_file(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, train="#!/bin/sh\nexit 2\n")
    assert _messages(_check(image, wine_inputs)) == ["train exited with 2 and wrote no /opt/ml/output/failure"]


@needs_sandbox
def test_a_serve_that_never_answers_ping(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, serve="""
        #!/usr/bin/env python3
        import time
        time.sleep(600)
    """)
    result = _check(image, wine_inputs)
    assert _messages(result) == ["serve did not answer GET /ping on port 8080 within 3 s"]
    assert result.serve["stopped_on_sigterm"] is True


@needs_sandbox
def test_a_serve_on_another_port(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, serve="""
        #!/bin/sh
        SAGEMAKER_BIND_TO_PORT=8081 exec /opt/program/serve_example
    """)
    assert _messages(_check(image, wine_inputs)) == ["serve did not answer GET /ping on port 8080 within 3 s"]


@needs_sandbox
def test_a_serve_that_exits(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, serve="""
        #!/bin/sh
        echo "no model server installed" >&2
        exit 3
    """)
    assert _messages(_check(image, wine_inputs)) == ["serve exited with 3 before answering GET /ping on port 8080"]


@needs_sandbox
def test_a_serve_that_answers_fewer_rows(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    image = _image(tmp_path, serve="""
        #!/usr/bin/env python3
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._answer(b"")

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self._answer(b"0,0.9,0.05,0.05\\n")  # one answer, however many rows

        HTTPServer(("", 8080), Handler).serve_forever()
    """)
    batch = wine_inputs.requests[1]
    assert _messages(_check(image, wine_inputs)) == [
        f"POST /invocations (batch_csv, {batch.rows} rows) answered 1 rows, not one per input row"]


# ---------------------------------------------------------------------------------------------- network isolation
@needs_sandbox
def test_the_programs_have_no_network(wine_inputs: ImageInputs, tmp_path: Path) -> None:
    """SageMaker's EnableNetworkIsolation: a train that needs the network fails, and says why."""
    image = _image(tmp_path, train="""
        #!/usr/bin/env python3
        import socket, sys
        try:
            socket.create_connection(("1.1.1.1", 443), timeout=5).close()
        except OSError as err:
            open("/opt/ml/output/failure", "w").write(f"no network: {err}\\n")
            sys.exit(1)
        open("/opt/ml/model/reached.txt", "w").write("connected\\n")
    """)
    result = _check(image, wine_inputs)
    assert _messages(result) == ["train exited with 1: no network: [Errno 101] Network is unreachable"]
    assert result.network["interfaces"] == ["lo"]
    assert "Network is unreachable" in result.network["probe"]


@needs_sandbox
def test_without_a_network_namespace_the_check_reports_the_network(wine_inputs: ImageInputs, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: the same check run without --net sees the host's interfaces and says so."""
    monkeypatch.setattr(byoc_check, "UNSHARE", tuple(a for a in byoc_check.UNSHARE if a != "--net"))
    image = _image(tmp_path, train="#!/bin/sh\ntrue\n")
    messages = _messages(_check(image, wine_inputs))
    assert any(m.startswith("the programs had a network (interfaces ") for m in messages), messages


# -------------------------------------------------------------------------------------------------------- the CLI
@needs_sandbox
def test_the_cli_passes_the_example_and_fails_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--schema", str(REPO / "pipelines/schemas/diabetes.json"),
            "--data", str(REPO / "pipelines/data/diabetes.csv")]
    assert main(["conformance", "--program-dir", str(EXAMPLE), *data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["conformant"] is True
    broken = _image(tmp_path, train="#!/bin/sh\ntrue\n")
    assert main(["conformance", "--program-dir", str(broken), *data]) == 1
    assert "FINDING train.model: train wrote no model: /opt/ml/model is empty" in capsys.readouterr().out


@pytest.mark.parametrize(("layout", "expected"), [
    ("missing", "--program-dir {dir} is not a folder"),
    ("no-train", "--program-dir {dir} has no train program (SageMaker runs `docker run <image> train`)"),
    ("not-executable", "--program-dir {dir}: serve is not executable (chmod +x)"),
])
def test_the_cli_refuses_a_bad_program_dir_with_one_line(layout: str, expected: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "image"
    if layout != "missing":
        shutil.copytree(EXAMPLE, folder)
        if layout == "no-train":
            (folder / "train").unlink()
        else:
            (folder / "serve").chmod(0o644)
    code = main(["conformance", "--program-dir", str(folder), "--schema", str(REPO / "pipelines/schemas/wine.json"),
                 "--data", str(REPO / "pipelines/data/wine.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"mlops conformance: {expected.format(dir=folder)}\n"


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("image", "expected"), [
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/wine:1.0", "is pinned by tag '1.0'; allowed: a digest"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/wine", "is not an ECR image URI"),
    ("docker.io/library/python@" + DIGEST, "is not an ECR image URI"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/Team/Wine@" + DIGEST, "is not an ECR repository name"),
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/wine@sha256:abc", "is pinned by tag"),
], ids=["tag", "no reference", "not ECR", "upper case", "short digest"])
def test_the_cli_refuses_an_image_not_pinned_by_digest_before_running_anything(
        image: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["conformance", "--program-dir", str(EXAMPLE), "--schema", str(REPO / "pipelines/schemas/wine.json"),
                 "--data", str(REPO / "pipelines/data/wine.csv"), "--image", image])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"mlops conformance: --image {image!r} ") and expected in err


def test_an_image_pinned_by_digest_is_accepted() -> None:
    from mlsettings.image_reference import image_reference_problem

    assert image_reference_problem("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/wine-model@" + DIGEST) is None
    assert image_reference_problem("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b_c@" + DIGEST) is None


def test_the_cli_refuses_a_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["conformance", "--program-dir", str(EXAMPLE), "--schema", str(REPO / "pipelines/schemas/wine.json"),
                 "--data", str(tmp_path / "nothing.csv")])
    assert code == 2
    assert capsys.readouterr().err == f"mlops conformance: --data {tmp_path / 'nothing.csv'} is not a file\n"


def test_without_unshare_the_check_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(byoc_check, "UNSHARE", ("unshare-not-here", *byoc_check.UNSHARE[1:]))
    with pytest.raises(SandboxUnavailable, match="unshare is not installed"):
        check_image(EXAMPLE, channels={}, channel_content_types={}, hyperparameters={}, requests=[])
    code = main(["conformance", "--program-dir", str(EXAMPLE), "--schema", str(REPO / "pipelines/schemas/wine.json"),
                 "--data", str(REPO / "pipelines/data/wine.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("mlops conformance: unshare is not installed")


# ------------------------------------------------------------------------------------------- counting the answers
@pytest.mark.parametrize(("body", "content_type", "rows"), [
    (b"0.1\n0.2\n\n0.3\n", "text/csv", 4),  # an empty line is a malformed row's answer
    (b"0.1\n\n", "text/csv", 2),  # ... the last row's too
    (b"0.1\n0.2\n\n", "text/csv", 3),  # and an extra line break is an extra answer
    (b"0.1\r\n0.2\r\n", "text/csv; charset=utf-8", 2),
    (b'{"predictions": [1, 2, 3], "malformed": 0}', "application/json", 3),
    (b"[[0.1, 0.9], [0.5, 0.5]]", "application/json", 2),
    (b'{"a": 1}\n{"a": 2}\n', "application/jsonlines", 2),
    (b"not json", "application/json", None),
])
def test_answers_are_counted_generically(body: bytes, content_type: str, rows: int | None) -> None:
    assert count_rows(body, content_type) == rows
