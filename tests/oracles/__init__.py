"""Functions of maintained libraries, run as oracles without installing them.

The wheels listed in tests/oracles/requirements.txt are downloaded into ``.oracles/`` by the Makefile's bootstrap
(`make test`). ``sdk_function`` takes one top-level function's source out of a module inside a wheel and runs it in
a namespace of its own with the names it needs from elsewhere passed in, so the oracle is the library's own code
at a pinned version, not our restatement of it.
"""

from __future__ import annotations

import ast
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ORACLES = Path(__file__).resolve().parents[2] / ".oracles"


def wheel(distribution: str) -> Path:
    found = sorted(ORACLES.glob(f"{distribution}-*.whl"))
    if not found:
        raise FileNotFoundError(f"{distribution} wheel missing in {ORACLES}: run `make test` (its bootstrap downloads "
                                "tests/oracles/requirements.txt)")
    return found[-1]


def library_functions(distribution: str, module_path: str, names: tuple[str, ...],
                      namespace: Mapping[str, Any] | None = None) -> dict[str, Callable[..., Any]]:
    """The named top-level functions of ``module_path`` (e.g. ``sagemaker/utils.py``) in the distribution's wheel."""
    with zipfile.ZipFile(wheel(distribution)) as archive:
        source = archive.read(module_path).decode("utf-8")
    tree = ast.parse(source)
    scope: dict[str, Any] = {"List": list, "Dict": dict, "Optional": Any, **(namespace or {})}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in names:
            module = ast.Module(body=[node], type_ignores=[])
            exec(compile(module, f"{distribution}:{module_path}", "exec"), scope)  # the pinned oracle code
            found[node.name] = scope[node.name]
    missing = set(names) - set(found)
    if missing:
        raise LookupError(f"{sorted(missing)} not found in {module_path} of {wheel(distribution).name}")
    return found
