"""One in-process synthesis of every environment per test session (a cold synth costs seconds; later
lookups are free). Bundling is skipped here: tests/infra/test_lambda_factory.py builds real bundles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.app_builder import build_app
from stacks.config import project_context
from stacks.stage import MlopsStage

ENVIRONMENTS = ("dev", "staging", "prod")
REGISTRY_ENVIRONMENTS = ("dev",)  # the environments that hold a registry and a training pipeline (cdk.json)


@dataclass
class SynthesizedApp:
    app: cdk.App
    stages: dict[str, MlopsStage]
    outdir: Path

    def template(self, environment: str, stack: str) -> Template:
        return Template.from_stack(getattr(self.stages[environment], stack))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynthesizedApp]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = project_context()
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    # The nag packs run in test_security_gates through validate_scope, which reports instead of raising.
    stages = build_app(app, context=context, with_nag=False)
    app.synth()
    yield SynthesizedApp(app=app, stages={s.config.name: s for s in stages}, outdir=outdir)
