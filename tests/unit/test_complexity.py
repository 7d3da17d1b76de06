"""Complexity as a checked habit: no function of the product (stacks, runtime, CLI, settings, test kit) is
longer than 80 lines. Ruff checks branches, statements and returns (pyproject.toml [tool.ruff.lint.pylint],
limits and reasons there); length is checked here, because a stack constructor that wires forty resources
can stay under every ruff limit and still not read as a wiring diagram."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("stacks", "mlsettings", "mlcore", "mlplatform", "mlops", "pipelines", "lambdas", "testkit")
MAX_LINES = 80


def long_functions(source: str, name: str, limit: int = MAX_LINES) -> list[str]:
    return [f"{name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno is not None and node.end_lineno - node.lineno + 1 > limit]


def test_no_product_function_is_longer_than_80_lines() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found += long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    found += long_functions((REPO / "app.py").read_text(encoding="utf-8"), "app.py")
    assert found == [], "split these (a stack constructor into the steps it wires):\n" + "\n".join(found)


def test_the_check_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n", "m.py") == [f"m.py:1 f ({MAX_LINES + 1} lines)"]
    assert long_functions("def g():\n    return 1\n", "m.py") == []
