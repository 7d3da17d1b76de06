"""A model team's hooks inside the platform's steps (training.code.evaluate_hook, preprocess_hook, serve_hook):
loaded from the team's folder (the code bundle's top, or a model's code/ folder for the serving hook), and every
failure of the team's code turned into one line (docs/TRAINING.md, "Hooks"). Standard library (and mlsettings)
only: it runs in either framework image, and is copied into every model's code/ folder for the serving handler."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsettings.training_code import first_line


class TeamHookError(RuntimeError):
    """A team's hook failed or broke its contract."""


class ServingHookError(TeamHookError):
    """A team's serving hook (training.code.serve_hook) failed or answered in another shape than its kind's."""


def load_team_hook(path: Path, function: str, error: type[TeamHookError] = TeamHookError,
                   name: str | None = None) -> Callable[..., Any]:
    """``function`` of the team's file ``path``, loaded once; calling it turns what it raises into one line, which
    names the file (or ``name``)."""
    label = name or path.name
    spec = importlib.util.spec_from_file_location(f"team_hook_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise error(f"{label} cannot be loaded as a module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        found = getattr(module, function)
    except Exception as err:  # the team's code: whatever it raises is reported, in one line
        raise error(f"{label}: loading {function}() raised {type(err).__name__}: {first_line(err)}") from None

    def call(*arguments: Any) -> Any:
        try:
            return found(*arguments)
        except Exception as err:  # the team's code: whatever it raises is reported, in one line
            raise error(f"{label}: {function}() raised {type(err).__name__}: {first_line(err)}") from None

    return call


def call_team_hook(path: Path, function: str, *arguments: Any) -> Any:
    """``function`` of the team's file ``path``, called once with ``arguments``; what it raises becomes one line."""
    return load_team_hook(path, function)(*arguments)
