"""The SageMaker XGBoost 3.2-0 container, as far as it can exist without Docker: its Python and packages in
``.venv-contract`` (tests/contract/requirements.txt, built by the Makefile), ``/opt/ml`` re-rooted to a
temporary folder, and no network — each process runs in a fresh network namespace (``unshare -n``: no
interface but a downed loopback), as network isolation leaves a job or a model. Where namespaces are not
allowed, pip is pointed at a closed loopback port instead, and the test output says so.

Only the environment a job or model is given reaches the process: the machine's own PIP_* settings and pip
configuration files are kept out (the image has none), so an install that needs an index fails here as it
would in SageMaker.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv-contract"
HARNESS = Path(__file__).resolve().parent / "harness"
CONTAINER_ROOT = "/opt/ml"
IMAGE_PYTHON = "3.12"


class ContainerUnavailableError(RuntimeError):
    """The contract environment is missing: `make test` builds it (target .venv-contract)."""


@dataclass(frozen=True)
class ContractImage:
    """One framework image as the contract tier stands it up: its Python and pins (a virtual environment the
    Makefile builds), the toolkit's `train` console script, and the framework glue the harness restates."""

    name: str
    venv: Path
    train_cli: str
    """The module of the image's `train` console script (the toolkit's setup.py console_scripts entry:
    sagemaker-containers' and sagemaker-training's own `train=<module>:main`)."""
    glue: str
    """The harness module restating the framework's training and serving entry points."""
    training_env: Mapping[str, str]
    """What the harness adds for the toolkit to run outside SageMaker (each entry says why)."""


XGBOOST_IMAGE = ContractImage(name="SageMaker XGBoost 3.2-0", venv=VENV, train_cli="sagemaker_containers.cli.train",
                              glue="xgboost_glue", training_env={})
SKLEARN_IMAGE = ContractImage(
    name="SageMaker scikit-learn 1.9-0", venv=REPO / ".venv-contract-sklearn", train_cli="sagemaker_training.cli.train",
    glue="sklearn_glue",
    # sagemaker-training 4.8.0 waits (up to 15 minutes) until every host of resourceconfig.json resolves in DNS,
    # which SageMaker's own network provides and a namespace without a network never does; its documented switch
    # for local runs skips that wait (entry_point.run: SM_STUDIO_LOCAL_MODE).
    training_env={"SM_STUDIO_LOCAL_MODE": "true"})


@functools.cache
def _namespaces_work() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    return subprocess.run([unshare, "-n", "true"], capture_output=True, check=False).returncode == 0


@dataclass(frozen=True)
class Container:
    """One container's file system root (what /opt/ml means) and how its processes are started."""

    root: Path
    image: ContractImage = XGBOOST_IMAGE

    @staticmethod
    def image_python(venv: Path = VENV) -> Path:
        python = venv / "bin" / "python"
        if not python.exists():
            raise ContainerUnavailableError(f"{python} is missing; run `make {venv.name}/.installed`")
        return python

    @staticmethod
    def describe() -> str:
        version = subprocess.run([str(Container.image_python()), "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        network = "no network (unshare -n)" if _namespaces_work() else "pip pointed at a closed port (no netns)"
        fallback = "" if version.startswith(IMAGE_PYTHON) else f" — NOT the image's Python {IMAGE_PYTHON}"
        return f"contract container: Python {version}{fallback}, {network}"

    def python(self) -> Path:
        """This container's interpreter: a fresh environment layered over the image's packages.

        The toolkit's `pip install .` writes into the interpreter's site-packages; in SageMaker every job and
        model starts from a pristine image, so each container here gets site-packages of its own (the image's
        packages stay visible through a .pth file) and no install leaks into the next container.
        """
        layer = Path(f"{self.root}.python")
        python = layer / "bin" / "python"
        if not python.exists():
            subprocess.run([str(self.image_python(self.image.venv)), "-m", "venv", "--without-pip", str(layer)],
                           check=True)
            purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip()
            image_lib = subprocess.run([str(self.image_python(self.image.venv)), "-c",
                                        "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                       capture_output=True, text=True, check=True).stdout.strip()
            # addsitedir, not a bare path: the image's own .pth files must run too (setuptools' distutils shim).
            Path(purelib, "_image_site_packages.pth").write_text(f"import site; site.addsitedir({image_lib!r})\n")
        return python

    def prepare(self) -> None:
        """What the platform creates before it starts the container: the /opt/ml folders the toolkit writes to.

        (The toolkit's trainer writes /opt/ml/output/failure when a script fails; without the folder that
        write raises and the job exits 0 — a harness without it would pass failing jobs.)"""
        for folder in ("model", "output/data", "input/config", "code"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def path(self, container_path: str) -> Path:
        """Where a container path (/opt/ml/...) lives here."""
        if not container_path.startswith(CONTAINER_ROOT):
            raise ValueError(f"{container_path} is not below {CONTAINER_ROOT}")
        return self.root / container_path[len(CONTAINER_ROOT):].lstrip("/")

    def reroot(self, value: str) -> str:
        """A string with every /opt/ml path moved below this container's root."""
        return value.replace(CONTAINER_ROOT, str(self.root))

    def environment(self, given: Mapping[str, str]) -> dict[str, str]:
        """The process environment: the image's defaults, then what the job or model sets (re-rooted)."""
        bin_dir = str(self.python().parent)
        self.prepare()
        base = {
            # The image: ENV PATH=/opt/venv/bin:$PATH, PYTHONDONTWRITEBYTECODE, PYTHONUNBUFFERED, LANG=C.UTF-8.
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
            # The toolkit's own switch for re-rooting /opt/ml (sagemaker_containers._env.BASE_PATH_ENV).
            "SAGEMAKER_BASE_DIR": str(self.root),
            # The image has no pip configuration; the machine running the tests may (PIP_FIND_LINKS, pip.conf).
            "PIP_CONFIG_FILE": os.devnull,
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
        }
        if not _namespaces_work():
            base.update({"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"})
        for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # this machine's CPU quirks (docs: env skill)
            if name in os.environ:
                base[name] = os.environ[name]
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        return {**base, **{key: self.reroot(value) for key, value in given.items()}}

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None,
            stdin: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if _namespaces_work():
            command = ["unshare", "-n", *command]
        return subprocess.run(command, env=self.environment(env), cwd=cwd or self.root, input=stdin,
                              capture_output=True, text=True, timeout=timeout, check=False)


def harness_env(extra: Mapping[str, str] | None = None, image: ContractImage = XGBOOST_IMAGE) -> dict[str, str]:
    """PYTHONPATH for the harness modules (the framework glue), nothing of the repository."""
    return {"PYTHONPATH": str(HARNESS), "CONTRACT_GLUE": image.glue, **(extra or {})}


def fail_with_logs(result: subprocess.CompletedProcess[str], what: str) -> str:
    return (f"{what} exited {result.returncode}\n--- stdout (tail)\n{result.stdout[-4000:]}\n"
            f"--- stderr (tail)\n{result.stderr[-6000:]}")


