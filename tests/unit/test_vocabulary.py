"""Every name that crosses the wall between the infrastructure and the runtime (events, stages, published
parameters, metrics, data layout) is written once, in mlsettings/vocabulary.py: no other non-test module may type
one of those strings again. A duplicate is how a stack and a handler came to disagree (issue #23)."""

from __future__ import annotations

import ast
from pathlib import Path

from mlsettings import vocabulary

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("mlsettings", "mlcore", "mlplatform", "lambdas", "pipelines", "stacks", "mlops", "testkit", "bench")
# Words that are also plain English or another API's vocabulary where they appear, listed with the reason.
SHARED_WORDS = {
    "Approved": "also botocore's ModelApprovalStatus/StageStatus value; the vocabulary names both uses",
    "promotion": "a common word in messages and docstrings' code",
    "rollback": "also the CLI subcommand's name",
    "page": "also a word in CLI help",
    "ticket": "also a word in CLI help",
    "batch": "also part of other names",
    "endpoint": "also the degradation source 'endpoint' and capture records' source",
    "models": "also a plural in messages",
    "pipelines": "also the package name",
    "checkpoints": "also a folder in containers",
    "Stage": "also botocore's ModelLifeCycle key; the vocabulary names the metric dimension",
    "variant": "also the key of a variant in reports and requests; the vocabulary names the published folder",
    "deployer": "also the deployer's service and role purpose; the vocabulary names the published folder",
}


# Classes whose values are also ordinary identifiers elsewhere (a function's service name is its folder's name and
# a JSON key such as "health_check"): defined once, but not policed as strings.
UNPOLICED_CLASSES = {"Service"}


def vocabulary_strings() -> dict[str, str]:
    """Every string constant of the vocabulary (module level and class attributes), by value."""
    found: dict[str, str] = {}
    tree = ast.parse(Path(vocabulary.__file__).read_text(encoding="utf-8"))
    skipped = {id(sub) for node in tree.body if isinstance(node, ast.ClassDef) and node.name in UNPOLICED_CLASSES
               for sub in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) \
                and id(node) not in skipped:
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[node.value.value] = target.id
    return {value: name for value, name in found.items() if value not in SHARED_WORDS and len(value) > 3}


def literals(path: Path) -> list[tuple[int, str]]:
    """String literals of a module, docstrings and f-string fragments excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    in_fstrings = {id(value) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for value in node.values}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings and id(node) not in in_fstrings]


def test_no_vocabulary_string_is_typed_twice() -> None:
    words = vocabulary_strings()
    assert len(words) > 60
    repeated = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")) if (REPO / package).is_dir() else []:
            if path == Path(vocabulary.__file__) or any(part.startswith(".") for part in path.parts):
                continue
            repeated += [f"{path.relative_to(REPO)}:{line}: {value!r} is vocabulary.{words[value]}"
                         for line, value in literals(path) if value in words]
    assert repeated == [], "\n".join(repeated)


def test_the_check_finds_a_repeated_name(tmp_path: Path) -> None:
    module = tmp_path / "handler.py"
    module.write_text('"""Doc mentioning Model Promotion Accepted."""\nSOURCE = "mlops.promotion"\n')
    words = vocabulary_strings()
    assert [(line, value) for line, value in literals(module) if value in words] == [(2, "mlops.promotion")]
