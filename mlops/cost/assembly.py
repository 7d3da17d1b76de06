"""What `mlops cost` reads from a synthesized cloud assembly (cdk.out): each stack of one environment by its
construct id (Storage, Serving, ...), and the facts in its template that cost money while nobody uses them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.errors import OperatorError


@dataclass(frozen=True)
class StackTemplate:
    stack: str  # the construct id inside the environment's Stage: Storage, Serving, ...
    template: Mapping[str, Any]

    def resources(self, resource_type: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for logical_id, body in self.template.get("Resources", {}).items():
            if body.get("Type") == resource_type:
                yield logical_id, body.get("Properties", {})

    def construct_name(self, logical_id: str) -> str:
        """The construct id CDK gave a resource (its ``aws:cdk:path`` without the stage, stack and 'Resource')."""
        path = str(self.template["Resources"][logical_id].get("Metadata", {}).get("aws:cdk:path", logical_id))
        parts = [part for part in path.split("/")[2:] if part not in ("Resource", "Default")]
        return "/".join(parts) or logical_id


def read_assembly(cdk_out: Path, environment: str) -> list[StackTemplate]:
    """The stacks of ``environment`` in ``cdk_out`` (what `make synth` writes); a missing or unreadable
    assembly is an OperatorError naming what to run."""
    folder = cdk_out / f"assembly-{environment}"
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise OperatorError(f"{folder} has no synthesized templates: run `make synth` first (or pass --cdk-out DIR)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        stacks = []
        for artifact in manifest.get("artifacts", {}).values():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            template_file = folder / artifact["properties"]["templateFile"]
            name = str(artifact.get("displayName", "")).split("/", 1)[-1]
            stacks.append(StackTemplate(stack=name, template=json.loads(template_file.read_text(encoding="utf-8"))))
    except (OSError, KeyError, json.JSONDecodeError) as err:
        raise OperatorError(f"{folder} is not a readable cloud assembly ({err}): run `make synth` again") from None
    if not stacks:
        raise OperatorError(f"{folder} holds no stacks: run `make synth` again")
    return sorted(stacks, key=lambda s: s.stack)


def join_text(value: Any) -> str:
    """A template string as text: Fn::Join parts that are references become '<ref>' (enough to read the JSON
    of a pipeline definition, whose numbers and instance types are literal)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return str(separator).join(join_text(part) for part in parts)
    return "<ref>"


def target_logical_id(target: Mapping[str, Any]) -> str | None:
    """The logical id a rule target's Arn points at with Fn::GetAtt (a function of the same template)."""
    arn = target.get("Arn")
    if isinstance(arn, Mapping) and "Fn::GetAtt" in arn:
        return str(arn["Fn::GetAtt"][0])
    return None


def alarm_metric_count(properties: Mapping[str, Any]) -> int:
    """CloudWatch bills an alarm per metric it evaluates: one for a single-metric alarm, one per MetricStat of
    a metric-math alarm (the expressions themselves are free)."""
    metrics = properties.get("Metrics")
    if metrics:
        return sum(1 for query in metrics if "MetricStat" in query)
    return 1
