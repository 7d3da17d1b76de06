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

import re
import zipfile
from collections.abc import Iterable, Iterator
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packaging.tags import Tag

PLATFORM = "platform"
"""The platform's own XGBoost training program (pipelines/steps/train.py)."""
XGBOOST_SCRIPT = "xgboost-script"
"""The model team's ``train.py`` in SageMaker's XGBoost framework container (script mode)."""
SKLEARN_SCRIPT = "sklearn-script"
"""The model team's ``train.py`` in SageMaker's scikit-learn framework container (script mode)."""
TRAINING_KINDS = (PLATFORM, XGBOOST_SCRIPT, SKLEARN_SCRIPT)
SCRIPT_KINDS = (XGBOOST_SCRIPT, SKLEARN_SCRIPT)

DEFAULT_ENTRY_POINT = "train.py"
REQUIREMENTS_FILE = "requirements.txt"
WHEELS_FOLDER = "wheels"
CONTAINER_CODE_DIR = "/opt/ml/code"
"""Where the toolkit unpacks the code bundle and runs from (sagemaker-containers' ``_env.code_dir``)."""
ENTRY_POINT_HYPERPARAMETER = "user_entry_point"
"""The hyperparameter that names the model team's program for the platform's wrapper."""
KIND_HYPERPARAMETER = "training_kind"
"""The hyperparameter that tells the wrapper which model file the team's program writes."""
RESERVED_NAMES = frozenset({"mlcore", "mlsettings", "pipelines", "setup.py", "setup.cfg", "pyproject.toml",
                            "MANIFEST.in"})
"""Names at the top of the code bundle that are the platform's: its packages, and the packaging files the toolkit
generates (a team's own setup.py would pip-install its install_requires from an index, which a network-isolated
job cannot reach)."""

# The XGBoost 3.2-0 image (aws/deep-learning-containers, docker/xgboost/uv.lock: Python 3.12 on x86_64 Linux; the
# contract tier's pins in tests/contract/requirements.txt): what a vendored wheel must be built for.
IMAGE_PYTHON = (3, 12)
IMAGE_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
                 "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                 "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
XGBOOST_IMAGE_PACKAGES = frozenset({
    # tests/contract/requirements.txt (installed there at the image's pins) ...
    "pip", "setuptools", "xgboost", "xgboost-cpu", "numpy", "pandas", "scipy", "python-dateutil", "pytz", "tzdata",
    "boto3", "botocore", "s3transfer", "jmespath", "urllib3", "flask", "werkzeug", "jinja2", "markupsafe",
    "itsdangerous", "click", "blinker", "gunicorn", "gevent", "greenlet", "zope-event", "zope-interface",
    "psutil", "retrying", "six", "inotify-simple", "paramiko", "protobuf", "pyyaml", "cryptography", "bcrypt",
    "pynacl", "cffi", "pycparser", "invoke", "sagemaker-containers",
    # ... and what it leaves out but the image has (its comment lists them)
    "scikit-learn", "pyarrow", "dask", "numba", "matplotlib", "multi-model-server", "sagemaker-inference",
    "smdebug", "cuda-python"})
"""Distributions the XGBoost image already has: a vendored wheel may depend on them without vendoring them."""
SKLEARN_IMAGE_PACKAGES = frozenset({
    # aws/deep-learning-containers docker/sklearn/1.9-0/uv.lock (Python 3.12; tests/contract/requirements-sklearn.txt)
    "bcrypt", "blinker", "boto3", "botocore", "certifi", "cffi", "charset-normalizer", "click", "colorama",
    "cryptography", "enum-compat", "flask", "future", "gevent", "greenlet", "gunicorn", "idna", "inotify-simple",
    "invoke", "itsdangerous", "jinja2", "jmespath", "joblib", "markupsafe", "model-archiver", "multi-model-server",
    "narwhals", "numpy", "packaging", "pandas", "paramiko", "pillow", "pip", "protobuf", "psutil", "pyarrow",
    "pycparser", "pynacl", "python-dateutil", "pytz", "pyyaml", "requests", "retrying", "s3transfer",
    "sagemaker-containers", "sagemaker-inference", "sagemaker-training", "scikit-learn", "scipy", "setuptools",
    "six", "threadpoolctl", "typing", "tzdata", "urllib3", "werkzeug", "zope-event", "zope-interface"})
IMAGE_PACKAGES = {XGBOOST_SCRIPT: XGBOOST_IMAGE_PACKAGES, SKLEARN_SCRIPT: SKLEARN_IMAGE_PACKAGES}
"""Per kind of script: what its framework image has (both images run Python 3.12 on x86_64 Linux)."""


def canonical(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(path: Path) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.split(r"\s+#", raw, maxsplit=1)[0].strip()
        if line and not line.startswith("#"):
            yield number, line


def _wheel_fits_image(tags: Iterable[Tag]) -> bool:
    interpreters = {"py3", f"py{IMAGE_PYTHON[0]}{IMAGE_PYTHON[1]}", f"cp{IMAGE_PYTHON[0]}{IMAGE_PYTHON[1]}"}
    for tag in tags:
        interpreter, abi, platform = tag.interpreter, tag.abi, tag.platform
        if interpreter in interpreters and abi in {"none", "abi3", f"cp{IMAGE_PYTHON[0]}{IMAGE_PYTHON[1]}"} and (
                platform == "any" or (platform.startswith(("manylinux", "linux")) and platform.endswith("x86_64"))):
            return True
    return False


def _wheels(folder: Path) -> dict[str, list[tuple[str, Path]]]:
    """Vendored wheels built for the image, by canonical name: (version, path)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    found: dict[str, list[tuple[str, Path]]] = {}
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        try:
            name, version, _build, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if _wheel_fits_image(tags):
            found.setdefault(canonical(name), []).append((str(version), path))
    return found


def _requires_dist(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if metadata is None:
            return []
        message = Parser().parsestr(archive.read(metadata).decode("utf-8", errors="replace"))
    return message.get_all("Requires-Dist") or []


def offline_requirements_problem(folder: Path, where: str, kind: str = XGBOOST_SCRIPT) -> str | None:
    """Why ``folder``'s requirements.txt would need the network inside a network-isolated job (one line), or None.

    Every requirement must be met by a wheel in ``wheels/`` built for the image (Python 3.12, x86_64 Linux), and
    every dependency of a needed wheel by another vendored wheel or by a package the image has; options (an index,
    ``-e``), URLs and references to other files are refused: the platform sets pip's options."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    requirements = folder / REQUIREMENTS_FILE
    if not requirements.is_file():
        return None
    wheels = _wheels(folder / WHEELS_FOLDER)
    how = (f"vendor it: pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 "
           f"-d {where}/{WHEELS_FOLDER} -r {where}/{REQUIREMENTS_FILE} (docs/TRAINING.md)")
    pending: list[tuple[str, str, bool]] = []  # (what to name, requirement, listed in requirements.txt)
    for number, line in _requirement_lines(requirements):
        label = f"{where}/{REQUIREMENTS_FILE} line {number} {line!r}"
        if line.startswith("-"):
            return f"{label}: pip options are the platform's (PIP_NO_INDEX, PIP_FIND_LINKS); allowed: requirements only"
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            return f"{label} is not a requirement: {err}"
        if requirement.url:
            return f"{label} needs the network (a URL), which the network-isolated training job has not; {how}"
        pending.append((label, str(requirement), True))
    seen: set[str] = set()
    while pending:
        label, text, listed = pending.pop(0)
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_MARKERS):
            continue
        name = canonical(requirement.name)
        candidates = []
        for version, path in wheels.get(name, []):
            try:
                if requirement.specifier.contains(Version(version), prereleases=True):
                    candidates.append(path)
            except InvalidVersion:
                continue
        if not candidates:
            if name in IMAGE_PACKAGES[kind] and not listed:  # a dependency the image already has
                continue
            return (f"{label} needs the network: no wheel in {where}/{WHEELS_FOLDER} satisfies {text!r} for the "
                    f"image's Python 3.12 on x86_64 Linux, and training jobs run with network isolation; {how}")
        if name in seen:
            continue
        seen.add(name)
        pending += [(f"{label} (a dependency of {candidates[0].name})", dependency, False)
                    for dependency in _requires_dist(candidates[0])]
    return None


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
    reserved = sorted(p.name for p in folder.iterdir() if p.name in RESERVED_NAMES)
    if reserved:
        return (f"{source_dir} holds {reserved}, names the platform's code bundle owns; allowed: other names "
                "(declare packages in requirements.txt with vendored wheels)")
    return offline_requirements_problem(folder, source_dir, kind)


def find_links(folder: Path) -> str | None:
    """PIP_FIND_LINKS for the Train step when ``folder`` vendors wheels (the folder as the container sees it)."""
    return f"{CONTAINER_CODE_DIR}/{WHEELS_FOLDER}" if any((folder / WHEELS_FOLDER).glob("*.whl")) else None
