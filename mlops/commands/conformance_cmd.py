"""`mlops conformance --program-dir DIR --schema FILE --data FILE [--json]`: check a team's own training and
serving image against SageMaker's container contract, offline (no Docker engine, no AWS).

The image is given as its folder (what its Dockerfile copies): executables ``train`` and ``serve``. The programs
get what the pipeline's Train step gives training (Preprocess's channels of the data, the Train step's
hyperparameters) and golden requests from the test split (`mlops.conformance_inputs`), and run in namespaces
without a network (`mlplatform.conformance.byoc_check`). Exit 0 when conformant, 1 with the findings when not, 2 on
bad input or when the namespaces cannot be created here."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlops.errors import OperatorError
from mlops.output import emit_json
from mlsettings.training_code import IMAGE_PROGRAMS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "conformance", help="check an own training/serving image's programs against SageMaker's container contract",
        description="Run the image's train and serve programs (a folder holding them) in a private /opt/ml "
                    "without network, on the channels and hyperparameters the pipeline gives training; send golden "
                    "requests from the test split. Exit 0 conformant, 1 findings, 2 bad input.")
    parser.add_argument("--program-dir", type=Path, required=True, metavar="DIR",
                        help="the image's program folder: executables train and serve")
    parser.add_argument("--schema", type=Path, required=True, metavar="FILE", help="the data schema (JSON)")
    parser.add_argument("--data", type=Path, required=True, metavar="FILE", help="a CSV file of the schema")
    parser.add_argument("--image", metavar="URI",
                        help="the ECR image the folder is built into, pinned by digest (a tag is refused)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mlplatform.conformance.byoc_check import SandboxFailed, SandboxUnavailable, check_image

    if args.image is not None:
        from mlsettings.image_reference import image_reference_problem

        problem = image_reference_problem(args.image)
        if problem:
            raise OperatorError(f"--image {problem}")
    program_dir = _program_dir(args.program_dir)
    for option, path in (("--schema", args.schema), ("--data", args.data)):
        if not path.is_file():
            raise OperatorError(f"{option} {path} is not a file")
    workdir = Path(tempfile.mkdtemp(prefix="mlops-conformance-"))
    try:
        inputs = _inputs(args, workdir)
        try:
            result = check_image(program_dir, channels=inputs.channels,
                                 channel_content_types=inputs.channel_content_types,
                                 hyperparameters=inputs.hyperparameters, requests=inputs.requests,
                                 instance_type=inputs.instance_type, workdir=workdir / "check")
        except (SandboxUnavailable, SandboxFailed) as err:
            raise OperatorError(str(err)) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        emit_json(result.to_dict())
    else:
        print(f"network: {', '.join(result.network.get('interfaces', []))} only; {result.network.get('probe')}")
        print(f"model files: {', '.join(result.model_files) or '-'}")
        for finding in result.findings:
            print(f"FINDING {finding.rule}: {finding.message}")
        print("conformant" if result.conformant else f"not conformant: {len(result.findings)} finding(s)")
    return 0 if result.conformant else 1


def _program_dir(path: Path) -> Path:
    if not path.is_dir():
        raise OperatorError(f"--program-dir {path} is not a folder")
    for program in IMAGE_PROGRAMS:
        target = path / program
        if not target.is_file():
            raise OperatorError(f"--program-dir {path} has no {program} program (SageMaker runs "
                                f"`docker run <image> {program}`)")
        if not target.stat().st_mode & 0o111:
            raise OperatorError(f"--program-dir {path}: {program} is not executable (chmod +x)")
    return path


def _inputs(args: argparse.Namespace, workdir: Path) -> Any:
    from mlops.conformance_inputs import prepare_inputs
    from mlsettings.schema import SchemaError
    from pipelines.steps.preprocess import PreprocessError

    # Preprocess logs to stdout as in its container; with --json stdout is the document.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    try:
        with quiet:
            return prepare_inputs(schema_path=args.schema, data_csv=args.data, workdir=workdir)
    except SchemaError as err:
        raise OperatorError(f"--schema {args.schema}: {err}") from None
    except (PreprocessError, ValueError, KeyError, OSError) as err:
        raise OperatorError(f"--data {args.data} cannot be preprocessed with --schema {args.schema}: {err}") \
            from None
