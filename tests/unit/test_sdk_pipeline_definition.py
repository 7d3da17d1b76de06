"""Issue 26: a pipeline authored with the SageMaker Python SDK v2 compiles offline to the same bytes twice.

Only where the SDK's own environment exists (bench/.venv-sdk; `make test` does not install it): the shape of
bench/sdk/author_v2.py with its code as s3:// URIs, two fresh processes in a namespace without a network when the
machine allows one. docs/SDK_PIPELINE.md has what breaks this (local code, another checkout folder, SDK v3).
"""

from __future__ import annotations

import pytest

from bench.bench_sdk_pipeline import AUTHOR_V2, VENVS, run_author, sandbox

PYTHON = VENVS["v2"] / "bin" / "python"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PYTHON.exists(), reason="the SDK's environment bench/.venv-sdk is absent (python3 -m venv "
                       "bench/.venv-sdk && bench/.venv-sdk/bin/pip install -r bench/sdk/requirements.txt)"),
]


def test_two_offline_runs_give_byte_identical_definitions(tmp_path):
    prefix = sandbox()
    outputs = [tmp_path / "first.json", tmp_path / "second.json"]
    for out in outputs:
        result = run_author(prefix, PYTHON, ["--code", "s3", "--session", "plain"], out, AUTHOR_V2)
        assert result["ok"], result
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
