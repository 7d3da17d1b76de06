"""A model team's hooks inside the platform's steps (training.code.evaluate_hook, training.code.preprocess_hook):
loaded from the team's folder at the top of the code bundle, called once, and every failure of the team's code
turned into one line (docs/TRAINING.md, "Hooks"). Standard library (and mlsettings) only: it runs in either
framework image."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from mlsettings.training_code import first_line


class TeamHookError(RuntimeError):
    """A team's hook failed or broke its contract."""


def call_team_hook(path: Path, function: str, *arguments: Any) -> Any:
    """``function`` of the team's file ``path``, called with ``arguments``; what it raises becomes one line."""
    spec = importlib.util.spec_from_file_location(f"team_hook_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise TeamHookError(f"{path.name} cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return getattr(module, function)(*arguments)
    except Exception as err:  # the team's code: whatever it raises is reported, in one line
        raise TeamHookError(f"{path.name}: {function}() raised {type(err).__name__}: {first_line(err)}") from None
