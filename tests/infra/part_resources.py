"""The resources of one part of a model's stack (stacks/model.py: Training, InferenceApi, Serving, Monitoring):
a model stack holds every part, so a test about one part counts and reads only the resources built under that
part's construct, keyed by their construct path below it (the logical ids a part had as a stack of its own)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from constructs import Construct

from testkit.serving_world import MODEL
from tests.infra.conftest import MODEL_PARTS, SynthesizedApp


def resources_under(construct: Construct, template: Template, resource_type: str | None = None
                    ) -> dict[str, dict[str, Any]]:
    """``{path below construct: the resource in template}`` (template: the template of construct's stack), of
    ``resource_type`` only when given."""
    stack = cdk.Stack.of(construct)
    resources = template.to_json()["Resources"]
    found: dict[str, dict[str, Any]] = {}
    for element in construct.node.find_all():
        if not isinstance(element, cdk.CfnResource):
            continue
        resource = resources[stack.get_logical_id(element)]
        if resource_type is None or resource["Type"] == resource_type:
            found[element.node.path.removeprefix(construct.node.path + "/")] = resource
    return found


def part_resources(synthesized: SynthesizedApp, env: str, part: str, resource_type: str | None = None,
                   model: str = MODEL) -> dict[str, dict[str, Any]]:
    """The resources of ``model``'s ``part`` (one of MODEL_PARTS) in ``env`` (resources_under)."""
    assert part in MODEL_PARTS, part
    construct = getattr(synthesized.stages[env].models[model], part)
    assert construct is not None, f"{env}: model {model} has no {part} part"
    return resources_under(construct, synthesized.template(env, part, model), resource_type)


def part_count(synthesized: SynthesizedApp, env: str, part: str, resource_type: str, model: str = MODEL) -> int:
    return len(part_resources(synthesized, env, part, resource_type, model))
