"""Which first-party files a Lambda bundle ships: the modules its handler imports, found by reading the source.

The stacks never import runtime code (docs/ARCHITECTURE.md), so the graph is static: every ``import`` and
``from … import`` statement of a module, at any depth of the file (a function-local import is loaded at run
time too), except those under ``if TYPE_CHECKING:``, which never run. From ``lambdas/<function>/handler.py``
the walk follows only the packages a function may ship (``BUNDLED_ROOTS``); an import of any other
first-party package (the CLI, the demo, the stacks, the tests) fails synth, because that code must never
reach a function. A package's ``__init__.py`` ships with each module below it, as Python imports it first.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNDLED_ROOTS = ("lambdas", "mlplatform", "mlcore", "mlsettings", "pipelines")
"""Top-level packages whose modules a bundle may hold."""
NEVER_BUNDLED = ("mlops", "stacks", "tests", "testkit", "bench", "app")
"""First-party code no function may import (import-linter's contracts say the same for the package graph)."""


class BundleGraphError(ValueError):
    """A handler's import graph reaches code that must not ship, or a module that does not exist."""


def module_path(module: str, root: Path = REPO_ROOT) -> Path | None:
    """The file of a first-party module (``pkg/mod.py`` or ``pkg/__init__.py``), or None if there is none."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(source: str, module: str, *, is_package: bool) -> list[str]:
    """Dotted names a module's import statements may load: ``import a.b`` gives ``a.b``; ``from a import b``
    gives ``a`` and ``a.b`` (``b`` may be a submodule); relative imports are resolved against ``module``."""
    names: list[str] = []
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{node.module}" if node.module else anchor
            else:
                base = node.module or ""
            names.append(base)
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def handler_modules(handler_module: str, root: Path = REPO_ROOT) -> dict[str, Path]:
    """``{module: file}`` of every first-party module ``handler_module`` loads, itself and packages included."""
    found: dict[str, Path] = {}
    pending = [handler_module]
    while pending:
        name = pending.pop()
        top = name.split(".")[0]
        if name in found or top not in BUNDLED_ROOTS + NEVER_BUNDLED:
            continue
        if top in NEVER_BUNDLED:
            raise BundleGraphError(f"{handler_module} imports {name}: {top}/ must never ship in a Lambda bundle")
        path = module_path(name, root)
        if path is None:
            parent = name.rpartition(".")[0]
            if parent and module_path(parent, root) is not None:
                continue  # ``from package import name`` where name is an attribute, not a submodule
            raise BundleGraphError(f"{handler_module} imports {name}, which is no module of this repository")
        found[name] = path
        parts = name.split(".")
        pending += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages load first
        pending += imported_names(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py")
    return found


def bundle_files(handler_module: str, data: Iterable[str] = (), root: Path = REPO_ROOT) -> list[Path]:
    """Every file a bundle ships, relative to the repository: the handler's modules and the declared data
    files (a file, or every file of a folder), sorted."""
    files = {path.relative_to(root) for path in handler_modules(handler_module, root).values()}
    for entry in data:
        target = root / entry
        if target.is_file():
            files.add(target.relative_to(root))
        elif target.is_dir():
            files.update(p.relative_to(root) for p in target.rglob("*")
                         if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        else:
            raise BundleGraphError(f"data file {entry} does not exist")
    return sorted(files)
