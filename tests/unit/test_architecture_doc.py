"""docs/ARCHITECTURE.md describes the tree as it is: every module of the domain package and of mlcore is in
its tables (and nothing that no longer exists), every path it names exists, and its contract table names
exactly the contracts `make lint` checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
PATH = re.compile(r"`((?:mlplatform|mlcore|mlsettings|lambdas|pipelines|stacks|mlops|testkit|tests|bench|docs)"
                  r"/[\w/<>.{},]*)`")


def _modules(package: str) -> set[str]:
    return {p.relative_to(REPO).as_posix() for p in (REPO / package).rglob("*.py")
            if p.name != "__init__.py" and "__pycache__" not in p.parts}


def _tabled(package: str) -> set[str]:
    return set(re.findall(rf"^\| `({package}/[\w/]+\.py)` \|", DOC, flags=re.M))


def test_every_domain_module_is_described_and_every_described_one_exists() -> None:
    assert _tabled("mlplatform") == _modules("mlplatform")


def test_every_mlcore_module_is_described_and_every_described_one_exists() -> None:
    assert _tabled("mlcore") == _modules("mlcore")


def test_every_settings_module_is_described_and_every_described_one_exists() -> None:
    assert _tabled("mlsettings") == _modules("mlsettings")


def test_every_path_the_page_names_exists() -> None:
    named = PATH.findall(DOC)
    assert len(named) > 40
    missing = []
    for path in named:
        if "<" in path or "{" in path:  # a pattern (lambdas/<function>/, mlcore/{schema,features}.py)
            continue
        if not (REPO / path.rstrip("/")).exists():
            missing.append(path)
    assert missing == []


def test_the_contract_table_names_the_configured_contracts() -> None:
    configured = {c["id"] for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
                  ["contracts"]}
    table = DOC.split("| contract (`lint-imports`) |", 1)[1].split("\n\n", 1)[0]
    tabled = set(re.findall(r"^\| `([a-z-]+)` \|", table, flags=re.M))
    assert tabled == configured


def test_every_lambda_folder_has_a_row_in_the_bundle_table() -> None:
    folders = {p.name for p in (REPO / "lambdas").iterdir() if (p / "handler.py").is_file()}
    rows = set(re.findall(r"^\| `([a-z_]+)`(?: \(4 tasks\))? \|", DOC, flags=re.M))
    assert folders <= rows
