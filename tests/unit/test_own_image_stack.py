"""An own image's model in its stack (training.code.kind image): the pipeline names the model's repository at the
configured digest (CDK's repository_uri_for_digest), or — before the first push — is one Fail step."""

from __future__ import annotations

import copy
import json

import aws_cdk as cdk

from pipelines.definition import iter_steps
from stacks.app_builder import build_app
from stacks.model import ModelStack
from testkit.model_sample import sampled_project_context

DIGEST = "sha256:" + "5e" * 32


def _image_model_only(digest: str | None) -> dict[str, object]:
    context = copy.deepcopy(sampled_project_context())
    (name,) = [n for n, entry in context["models"].items()
               if entry.get("training", {}).get("code", {}).get("kind") == "image"]
    entry = context["models"][name]
    entry["training"]["code"]["image_digest"] = digest
    context["models"] = {name: entry}
    return context


def test_an_own_image_compiles_to_its_repository_at_the_digest_or_to_one_fail_step_without_one() -> None:
    for digest, expected in ((DIGEST, {"Train", "TeamModel", "Score", "Evaluate", "Register"}), (None, {"NoImageYet"})):
        context = _image_model_only(digest)
        app = cdk.App(context={**context, "aws:cdk:bundling-stacks": [], "env": "dev"})
        stages = build_app(app, context=context, with_nag=False)
        (stack,) = [c for stage in stages for c in stage.node.children if isinstance(c, ModelStack)]
        assert stack.training is not None and stack.image_repository is not None
        steps = {step["Name"]: step for step in iter_steps(stack.training.definition)}
        assert expected <= set(steps), sorted(steps)
        repository = stack.image_repository.node.default_child
        assert stack.resolve(repository.repository_name) == "mlops-dev/cancer-image"  # type: ignore[union-attr]
        if digest is not None:
            image = json.dumps(stack.resolve(steps["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]))
            assert image.endswith(f'"@{digest}"]]}}') and '{"Ref": "ImageRepository' in image
