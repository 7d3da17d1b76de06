"""Own images "as if pushed", for the test worlds and the demo.

The shipped cdk.json names no digest for an own image no one has pushed (``cancer-image``: its pipeline is one Fail
step that says to push it, docs/TRAINING.md "Your own image"). The test worlds and the demo synthesize and play such a
model as if its folder had been built and pushed to its repository: its digest is the folder's content hash (sha256
over its files' paths and bytes), a stand-in for the manifest digest only a push gives. A digest cdk.json does name
is kept."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlsettings.config.fields import REPO_ROOT
from mlsettings.training_code import IMAGE


def folder_digest(folder: Path) -> str:
    """``sha256:<hex>`` of a folder's files, by relative path and content (the demo's stand-in for a push)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


def as_if_pushed(context: Mapping[str, Any]) -> dict[str, Any]:
    """``context`` (cdk.json's context block) with every own-image model's missing digest set (see the module)."""
    pushed = copy.deepcopy(dict(context))
    for entry in (pushed.get("models") or {}).values():
        code = (entry.get("training") or {}).get("code") or {}
        if code.get("kind") == IMAGE and not code.get("image_digest") and code.get("source_dir"):
            code["image_digest"] = folder_digest(REPO_ROOT / code["source_dir"])
    return pushed
