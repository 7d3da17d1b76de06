"""What the contract tier takes from the real cloud assembly: the pipeline definition exactly as CloudFormation
will hand it to SageMaker, and each file asset under the object key the CDK CLI will upload it as.

The template's ``PipelineDefinitionBody`` is an ``Fn::Join`` of JSON text and CloudFormation references.
References become stand-in strings (``{{Ref:Logical}}``); pseudo parameters take fixed values; everything
else is the synthesized text, unchanged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT, PARTITION = "123456789012", "aws"


def _resolve(node: Any, region: str) -> str:
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping) or len(node) != 1:
        raise ValueError(f"cannot resolve {node!r}")
    (function, argument), = node.items()
    if function == "Fn::Join":
        separator, parts = argument
        return str(separator).join(_resolve(part, region) for part in parts)
    if function == "Fn::Sub" and isinstance(argument, str):
        pseudo = {"AWS::AccountId": ACCOUNT, "AWS::Region": region, "AWS::Partition": PARTITION,
                  "AWS::URLSuffix": "amazonaws.com"}
        return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo.get(m.group(1), f"{{{{Sub:{m.group(1)}}}}}"), argument)
    if function in ("Ref", "Fn::ImportValue"):
        return f"{{{{{function.split('::')[-1]}:{argument if isinstance(argument, str) else 'x'}}}}}"
    if function == "Fn::GetAtt":
        return f"{{{{GetAtt:{'.'.join(argument) if isinstance(argument, list) else argument}}}}}"
    raise ValueError(f"cannot resolve {function}")


@dataclass(frozen=True)
class FileAsset:
    source: Path  # the file in the cloud assembly
    object_key: str  # what the CDK CLI uploads it as

    @property
    def file_name(self) -> str:
        """The name an S3Prefix input of this one object gets inside a container."""
        return self.object_key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SynthesizedTraining:
    definition: dict[str, Any]
    assets: dict[str, FileAsset]  # by object key

    def asset_for_uri(self, uri: str) -> FileAsset | None:
        if not uri.startswith("s3://cdk-"):
            return None
        key = uri[5:].partition("/")[2]
        return self.assets.get(key)


def read_training(assembly: Path, stage: str, stack_artifact: str) -> SynthesizedTraining:
    """A model's training pipeline in one stage (``stack_artifact``: the artifact id of the model's stack, which
    holds its Training part): its pipeline definition and its file assets."""
    folder = assembly / f"assembly-{stage}"
    template_path = folder / f"{stack_artifact}.template.json"
    template = json.loads(template_path.read_text())
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    region = json.loads((folder / "manifest.json").read_text())["artifacts"][template_path.name.removesuffix(
        ".template.json")]["environment"].rsplit("/", 1)[-1]
    body = _resolve(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"], region)
    manifest = json.loads(template_path.with_name(template_path.name.replace(".template.json", ".assets.json"))
                          .read_text())
    assets: dict[str, FileAsset] = {}
    for entry in manifest["files"].values():
        source = (folder / entry["source"]["path"]).resolve()
        for destination in entry["destinations"].values():
            assets[destination["objectKey"]] = FileAsset(source=source, object_key=destination["objectKey"])
    return SynthesizedTraining(definition=json.loads(body), assets=assets)
