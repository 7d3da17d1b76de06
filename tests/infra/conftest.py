"""One in-process synthesis of every environment per test session (a cold synth costs seconds; later
lookups are free). Bundling is skipped here: tests/infra/test_lambda_factory.py builds real bundles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from mlsettings.config import load_environments
from stacks.app_builder import build_app
from stacks.stage import MlopsStage
from testkit.model_sample import sampled_project_context
from testkit.serving_world import MODEL

# The parts of a model's stack (stacks/model.py): each test of a part reads the stack of MODEL, a model of the
# shipped cdk.json; tests/infra/test_models.py covers what differs between models and what they share.
MODEL_PARTS = ("training", "inference_api", "serving", "monitoring")

ENVIRONMENTS = ("dev", "staging", "prod")
REGISTRY_ENVIRONMENTS = ("dev",)  # the environments that hold a registry and a training pipeline (cdk.json)
# The shipped cdk.json with only the account ids changed: each environment in its own account.
ACCOUNTS = {"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"}
IN_ITS_ACCOUNT = "@own-account"
# What the validators check: every environment as shipped (one account) and in its own account.
TOPOLOGIES = (*ENVIRONMENTS, *(f"{env}{IN_ITS_ACCOUNT}" for env in ENVIRONMENTS))


@dataclass
class SynthesizedApp:
    app: cdk.App
    stages: dict[str, MlopsStage]
    outdir: Path
    _templates: dict[tuple[str, str], Template] = field(default_factory=dict)

    def template(self, environment: str, stack: str, model: str = MODEL) -> Template:
        """A shared stack's template, or (``stack`` one of MODEL_PARTS) the template of ``model``'s stack, which
        holds that part."""
        stage = self.stages[environment]
        key = (environment, model if stack in MODEL_PARTS else stack)
        if key not in self._templates:
            self._templates[key] = Template.from_stack(stage.models[model] if stack in MODEL_PARTS
                                                       else getattr(stage, stack))
        return self._templates[key]


def _synthesize(outdir: Path, context: dict[str, object]) -> SynthesizedApp:
    app = cdk.App(outdir=str(outdir), context={**context, "aws:cdk:bundling-stacks": []})
    # The nag packs run in test_security_gates through validate_scope, which reports instead of raising.
    stages = build_app(app, context=context, with_nag=False)
    app.synth()
    return SynthesizedApp(app=app, stages={s.config.name: s for s in stages}, outdir=outdir)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    return _synthesize(tmp_path_factory.mktemp("cdk.out"), sampled_project_context())


def three_account_context() -> dict[str, object]:
    import copy

    context = copy.deepcopy(sampled_project_context())
    for env, account in ACCOUNTS.items():
        context["environments"][env]["account"] = account
    return context


@pytest.fixture(scope="session")
def three_accounts(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The same synthesis with each environment in its own account (ACCOUNTS)."""
    return _synthesize(tmp_path_factory.mktemp("three-accounts.out"), three_account_context())


def topology_stages(synthesized: SynthesizedApp, three_accounts: SynthesizedApp) -> dict[str, object]:
    """cloud_model Stages for every name of TOPOLOGIES."""
    from tests.infra.cloud_model import Stage

    configs = load_environments(sampled_project_context())
    found: dict[str, object] = {env: Stage.load(synthesized.outdir, env, configs[env].region)
                                for env in ENVIRONMENTS}
    for env, account in ACCOUNTS.items():
        found[f"{env}{IN_ITS_ACCOUNT}"] = Stage.load(three_accounts.outdir, env, configs[env].region,
                                                     account=account)
    return found


# ---------------------------------------------------------------- delivery from git (stacks/delivery.py)
REPOSITORY = "example-org/serverless-mlops"  # any 'owner/name': the tests never reach GitHub
DELIVERY_LAYOUTS = ("one-account", "own-accounts")


@dataclass
class DeliveryApp:
    app: cdk.App
    stage: object  # stacks.delivery.DeliveryStage
    outdir: Path
    context: dict[str, object]


def delivery_context(layout: str) -> dict[str, object]:
    """cdk.json as shipped (one-account) or with every environment in its own account, naming a repository."""
    import copy

    context = three_account_context() if layout == "own-accounts" else copy.deepcopy(sampled_project_context())
    context["defaults"]["delivery"] = {"github_repository": REPOSITORY}
    return context


@pytest.fixture(scope="session")
def delivery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DeliveryApp]:
    """Every account's OIDC stack (the Delivery stage alone), in both layouts."""
    from stacks.delivery import build_delivery

    built: dict[str, DeliveryApp] = {}
    for layout in DELIVERY_LAYOUTS:
        context = delivery_context(layout)
        outdir = tmp_path_factory.mktemp(f"delivery-{layout}.out")
        app = cdk.App(outdir=str(outdir), context=context)
        stage = build_delivery(app, load_environments(context), only=None, default_account=None)
        app.synth()
        built[layout] = DeliveryApp(app=app, stage=stage, outdir=outdir, context=context)
    return built
