"""Model teams' own training code (issue 26): the kinds of training a model may use and the contract of a
script-mode folder, shared by the configuration (checked at synth), the stacks (the code bundle, the Train step)
and the container's wrapper (pipelines/steps/script_train.py). docs/TRAINING.md states the contract for users.

A script-mode folder (``training.code.source_dir``) holds the entry point (``train.py``), optionally a
``requirements.txt`` and a ``wheels/`` folder of vendored wheels. The training job runs with network isolation
(always: pipelines/definition.py), so every requirement must install from ``wheels/`` with no index: the
toolkit in the XGBoost image runs ``python -m pip install . -r requirements.txt`` in the code folder
(sagemaker-containers 2.8.6.post2, ``_modules.install``), the scikit-learn image's ``python -m pip install -r
requirements.txt`` (sagemaker-training 4.8.0, ``modules.install_requirements``), and the Train step sets
``PIP_NO_INDEX`` and ``PIP_FIND_LINKS`` for both. A requirement no vendored wheel satisfies is refused at synth,
not at 3 a.m.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.markers import Marker

PLATFORM = "platform"
"""The platform's own XGBoost training program (pipelines/steps/train.py)."""
XGBOOST_SCRIPT = "xgboost-script"
"""The model team's ``train.py`` in SageMaker's XGBoost framework container (script mode)."""
SKLEARN_SCRIPT = "sklearn-script"
"""The model team's ``train.py`` in SageMaker's scikit-learn framework container (script mode)."""
IMAGE = "image"
"""The model team's own image: an ECR image pinned by digest, in the model's repository, whose ``train`` and ``serve``
programs follow SageMaker's conventions (mlplatform/conformance/container_contract.py)."""
TRAINING_KINDS = (PLATFORM, XGBOOST_SCRIPT, SKLEARN_SCRIPT, IMAGE)
SCRIPT_KINDS = (XGBOOST_SCRIPT, SKLEARN_SCRIPT)
IMAGE_PROGRAMS = ("train", "serve")
"""The programs an own image's folder (training.code.source_dir, what its Dockerfile copies) holds: SageMaker runs
``docker run <image> train`` and ``docker run <image> serve``."""

DEFAULT_ENTRY_POINT = "train.py"
REQUIREMENTS_FILE = "requirements.txt"
WHEELS_FOLDER = "wheels"
CONTAINER_CODE_DIR = "/opt/ml/code"
"""Where the toolkit unpacks the code bundle and runs from (sagemaker-containers' ``_env.code_dir``)."""
ENTRY_POINT_HYPERPARAMETER = "user_entry_point"
"""The hyperparameter that names the model team's program for the platform's wrapper."""
KIND_HYPERPARAMETER = "training_kind"
"""The hyperparameter that tells the wrapper which model file the team's program writes."""
TRAINING_KIND_KEY = KIND_HYPERPARAMETER
"""The key that names a version's training kind: in its registered metadata (the pipeline's Register step and
`mlops train --local`) and in its training summary."""
PLATFORM_PACKAGES = ("mlcore", "mlsettings", "pipelines")
"""The platform's packages at the top of every code bundle (pipelines/definition.py bundles exactly these)."""
PACKAGING_FILES = frozenset({"setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in"})
"""Packaging files the toolkit generates or reads: a team's own setup.py would pip-install its install_requires from
an index, which a network-isolated job cannot reach."""

# The images (aws/deep-learning-containers' lock files, in image_packages.json): Python 3.12 on x86_64 Linux.
IMAGE_PYTHON = (3, 12)
IMAGE_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
                 "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                 "implementation_name": "cpython", "platform_python_implementation": "CPython",
                 "platform_release": "", "platform_version": "", "extra": ""}
"""PEP 508 marker values inside the images (a marker name not listed here would take the synth machine's)."""
MANYLINUX_GLIBC = 34
"""The newest glibc manylinux tag accepted (2.34: Amazon Linux 2023, the scikit-learn image's base; a wheel for a
newer glibc would not load there)."""
_IMAGE_PACKAGES_FILE = Path(__file__).with_name("image_packages.json")
IMPORT_NAMES = {"scikit-learn": "sklearn", "python-dateutil": "dateutil", "pyyaml": "yaml", "pynacl": "nacl",
                "zope-event": "zope", "zope-interface": "zope", "pillow": "PIL", "protobuf": "google",
                "nvidia-ml-py": "pynvml", "cuda-python": "cuda", "cuda-bindings": "cuda", "cuda-core": "cuda",
                "charset-normalizer": "charset_normalizer", "rapids-dask-dependency": "rapids_dask_dependency"}
"""A distribution's top-level import name where it is not the distribution's name with '-' as '_'."""


@cache
def image_packages(kind: str) -> dict[str, str]:
    """The distributions the image of ``kind`` has, by canonical name: their versions (image_packages.json)."""
    document = json.loads(_IMAGE_PACKAGES_FILE.read_text(encoding="utf-8"))
    return {canonical(name): version for name, version in document[kind].items()}


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> Iterator[tuple[int, str]]:
    # utf-8-sig: a file saved with a byte-order mark reads as pip reads it
    for number, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
        if line and not line.startswith("#"):
            yield number, line


@cache
def _image_tags() -> frozenset[str]:
    """Every wheel tag pip in the images installs (packaging.tags, pip's own rules, for CPython 3.12 on x86_64
    Linux up to MANYLINUX_GLIBC): cp312 and abi3 builds of any earlier 3.x, pure py3 wheels."""
    from packaging import tags

    platforms = ([f"manylinux_2_{minor}_x86_64" for minor in range(MANYLINUX_GLIBC, 4, -1)]
                 + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"])
    supported = [*tags.cpython_tags(IMAGE_PYTHON, platforms=platforms),
                 *tags.compatible_tags(IMAGE_PYTHON, f"cp{IMAGE_PYTHON[0]}{IMAGE_PYTHON[1]}", platforms)]
    return frozenset(str(tag) for tag in supported)


def _wheels(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """Vendored wheels built for the image, by canonical name: (version, path)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    supported = _image_tags()
    found: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if any(str(tag) in supported for tag in tags):
            found.setdefault(canonical(name), []).append((str(version), path))
    return found


def _requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if metadata is None:
            return []
        message = Parser().parsestr(archive.read(metadata).decode("utf-8", errors="replace"))
    return message.get_all("Requires-Dist") or []


def _applies(marker: Marker | None, extras: frozenset[str]) -> bool:
    """A requirement's marker in the image, for each extra asked for (and none)."""
    return marker is None or any(marker.evaluate({**IMAGE_MARKERS, "extra": extra}) for extra in {"", *extras})


def first_line(err: BaseException) -> str:
    """The first line of an error's text ('' when it has none): every refusal of a team's code is one line."""
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def described(err: BaseException) -> str:
    """``Type: first line`` of an error (``Type`` alone when it has no text)."""
    return f"{type(err).__name__}: {first_line(err)}" if first_line(err) else type(err).__name__


def offline_requirements_problem(folder: Path, where: str, kind: str = XGBOOST_SCRIPT) -> str | None:
    """Why ``folder``'s requirements.txt would need the network inside a network-isolated job (one line), or None.

    Every listed requirement must be met by a wheel in ``wheels/`` the image can install (pip's tag rules for
    CPython 3.12 on x86_64 Linux), and every dependency of a needed wheel (with the extras asked for) by another
    vendored wheel or by a package the image has at a version that satisfies it; options (an index, ``-e``),
    includes (``-r``), URLs and unparsable lines are refused: the platform sets pip's options."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    requirements = folder / REQUIREMENTS_FILE
    if not requirements.is_file():
        return None
    wheels = _wheels(folder / WHEELS_FOLDER)
    image = image_packages(kind)
    how = (f"vendor it: pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 "
           f"-d {where}/{WHEELS_FOLDER} -r {where}/{REQUIREMENTS_FILE} (docs/TRAINING.md)")
    pending: list[tuple[str, Requirement, bool]] = []  # (what to name, requirement, listed in requirements.txt)
    for number, line in _requirement_lines(requirements):
        label = f"{where}/{REQUIREMENTS_FILE} line {number} {line!r}"
        if line.startswith(("-r", "-c", "--requirement", "--constraint")):
            return f"{label}: includes are not followed; allowed: every requirement listed in {REQUIREMENTS_FILE}"
        if line.startswith("-"):
            return f"{label}: pip options are the platform's (PIP_NO_INDEX, PIP_FIND_LINKS); allowed: requirements only"
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            return f"{label} is not a requirement: {first_line(err) or type(err).__name__}"
        if requirement.url:
            return f"{label} needs the network (a URL), which the network-isolated training job has not; {how}"
        pending.append((label, requirement, True))
    seen: set[str] = set()
    while pending:
        label, requirement, listed = pending.pop(0)
        name = canonical(requirement.name)
        candidates = []
        for version, path in wheels.get(name, []):
            try:
                if requirement.specifier.contains(Version(version), prereleases=True):
                    candidates.append((Version(version), path))
            except InvalidVersion:
                continue
        if not candidates:
            if not listed and name in image and requirement.specifier.contains(image[name], prereleases=True):
                continue  # a dependency the image already has, at a version that satisfies it
            return (f"{label} needs the network: no wheel in {where}/{WHEELS_FOLDER} satisfies {str(requirement)!r} "
                    f"for the image's Python 3.12 on x86_64 Linux"
                    + (f" (the image has {requirement.name} {image[name]})" if name in image and not listed else "")
                    + f", and training jobs run with network isolation; {how}")
        chosen = max(candidates)[1]  # pip installs the newest wheel that satisfies the requirement
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for text in _requires_dist(chosen):
            dependency = Requirement(text)
            if _applies(dependency.marker, frozenset(requirement.extras)):
                pending.append((f"{label} (a dependency of {chosen.name})", dependency, False))
    return None


def shadowed_names(kind: str) -> frozenset[str]:
    """Top-level module names a team's folder may not use: the platform's packages, the standard library's and the
    image's packages' import names — the platform's steps put the code folder first on sys.path, so a team's
    ``json.py`` or ``joblib.py`` would replace the real module inside the platform's own steps."""
    packages = {IMPORT_NAMES.get(name, name.replace("-", "_")) for name in image_packages(kind)}
    return frozenset({*PLATFORM_PACKAGES, *sys.stdlib_module_names, *packages})


def source_dir_problem(root: Path, source_dir: str, entry_point: str, kind: str = XGBOOST_SCRIPT) -> str | None:
    """Why ``source_dir`` (relative to ``root``) is not a script-mode folder (one line), or None."""
    folder = (root / source_dir).resolve()
    if not folder.is_relative_to(root.resolve()):
        return f"{source_dir} is outside the repository; allowed: a folder relative to the repository root"
    if not folder.is_dir():
        return (f"{source_dir} does not exist; allowed: the model's training code folder, relative to the "
                "repository root")
    if not (folder / entry_point).is_file():
        return f"{source_dir}/{entry_point} does not exist; allowed: the folder's training program (docs/TRAINING.md)"
    links = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_symlink())
    if links:
        return f"{source_dir} holds symbolic links {links}; allowed: plain files (the bundle copies what they name)"
    packaging_files = sorted(p.name for p in folder.iterdir() if p.name in PACKAGING_FILES)
    if packaging_files:
        return (f"{source_dir} holds {packaging_files}, packaging the toolkit owns; allowed: a requirements.txt "
                "with vendored wheels")
    shadowed = shadowed_names(kind)
    modules = sorted(p.name for p in folder.iterdir()
                     if not p.name.startswith(".") and (p.stem if p.suffix == ".py" else p.name) in shadowed
                     and (p.suffix == ".py" or p.is_dir()) and p.name != WHEELS_FOLDER)
    if modules:
        return (f"{source_dir} holds {modules}, which would shadow the platform's, the standard library's or the "
                "image's modules of the same name in the platform's own steps; allowed: other names")
    return offline_requirements_problem(folder, source_dir, kind)


EVALUATE_HOOK_FUNCTION = "evaluate"
"""The function an evaluation hook defines: evaluate(labels, answers, schema) -> {metric name: number}."""
TEAM_METRIC_NAME = r"[A-Za-z][A-Za-z0-9_]{0,63}"
MAX_TEAM_METRICS = 20


PREPROCESS_HOOK_FUNCTION = "clean"
"""The function a preprocessing hook defines: clean(frame, schema) -> frame (rows only: the same columns)."""
SERVE_HOOK_FUNCTION = "predict"
"""The function a serving hook defines: predict(model, features) -> the model's answers, in XGBoost's shape for the
kind (binary: the positive class's probability per row; multiclass: a row of class probabilities; regression: the
value), for the loaded model and a feature matrix (the platform's features, NaN for a missing value)."""
SERVE_HOOK_HYPERPARAMETER = "serve_hook"
"""The Train step's hyperparameter that names the team's serving hook for the platform's wrapper."""
MODEL_CODE_FOLDER = "code"
"""The model folder's code/ (what the serving toolkit imports: SAGEMAKER_SUBMIT_DIRECTORY /opt/ml/model/code): the
platform's handler, the modules it imports and a team's serving hook."""
TEAM_SERVE_FILE = "team_serve.py"
"""Where the wrapper puts a team's serving hook in the model folder's code/ (beside the platform's handler)."""
HOOKS = {"evaluate_hook": (EVALUATE_HOOK_FUNCTION, ("labels", "answers", "schema")),
         "preprocess_hook": (PREPROCESS_HOOK_FUNCTION, ("frame", "schema")),
         "serve_hook": (SERVE_HOOK_FUNCTION, ("model", "features"))}
"""Each hook setting of training.code: the function its file defines and that function's parameters."""


def hook_problem(folder: Path, hook: str, setting: str) -> str | None:
    """Why ``hook`` in ``folder`` is not the hook ``setting`` names (one line, naming the file), or None: it exists,
    parses, and defines the hook's function at its top level with its parameters. Read, never imported, at synth."""
    import ast

    function, parameters = HOOKS[setting]
    path = folder / hook
    if not path.is_file():
        return f"{hook} does not exist; allowed: a Python file of the folder defining {function}()"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as err:
        return f"{hook} does not parse: {type(err).__name__}: {first_line(err) or type(err).__name__}"
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
    signature = f"{function}({', '.join(parameters)})"
    if not functions:
        return f"{hook} defines no top-level {signature}"
    arguments = functions[-1].args
    if len(arguments.posonlyargs) + len(arguments.args) != len(parameters) and arguments.vararg is None:
        return (f"{hook}'s {function}() takes {len(arguments.posonlyargs) + len(arguments.args)} arguments; "
                f"allowed: {signature}")
    return None


def find_links(folder: Path) -> str | None:
    """PIP_FIND_LINKS for the Train step when ``folder`` vendors wheels (the folder as the container sees it)."""
    return f"{CONTAINER_CODE_DIR}/{WHEELS_FOLDER}" if any((folder / WHEELS_FOLDER).glob("*.whl")) else None


def image_folder_problem(root: Path, source_dir: str) -> str | None:
    """Why ``source_dir`` is not an own image's folder (one line), or None: inside the repository, holding the
    ``train`` and ``serve`` programs its Dockerfile copies (the conformance check and local runs run them)."""
    folder = (root / source_dir).resolve()
    if not folder.is_relative_to(root.resolve()):
        return f"{source_dir} is outside the repository; allowed: a folder relative to the repository root"
    missing = [name for name in IMAGE_PROGRAMS if not (folder / name).is_file()]
    plain = [name for name in IMAGE_PROGRAMS if name not in missing and not os.access(folder / name, os.X_OK)]
    if plain:
        return (f"{source_dir}/{plain[0]} is not executable; allowed: the image's programs with their executable bit "
                f"(chmod +x {source_dir}/{plain[0]}, committed: git keeps the bit)")
    if missing:
        return (f"{source_dir} has no {' and no '.join(missing)} program; allowed: the image's folder with the "
                f"executables {' and '.join(IMAGE_PROGRAMS)} its Dockerfile copies (docs/TRAINING.md, 'Your own "
                "image')")
    return None


def image_repository(project: str, registry_environment: str, model: str) -> str:
    """The ECR repository of a model's own image, in its registry environment (mlsettings.naming.image_repository_name
    gives it for a model's view)."""
    return f"{project}-{registry_environment}/{model}"
