"""A team's training code folder is checked at synth (mlsettings.training_code, run by the configuration): every
requirement must install from its vendored wheels with no index, because the training job has no network."""

from __future__ import annotations

import copy
import dataclasses
import zipfile
from pathlib import Path

import pytest

from mlsettings.config import ConfigError, load_environments, project_context
from mlsettings.config.fields import REPO_ROOT
from mlsettings.training_code import (
    CONTAINER_CODE_DIR,
    PLATFORM_PACKAGES,
    SKLEARN_SCRIPT,
    XGBOOST_SCRIPT,
    canonical,
    find_links,
    image_packages,
    offline_requirements_problem,
    source_dir_problem,
)

SHIPPED = REPO_ROOT / "models" / "wine-script"


def wheel(folder: Path, name: str, version: str, *, tag: str = "py3-none-any", requires: tuple[str, ...] = ()) -> Path:
    """A wheel file as pip download leaves it: its name carries the tags, its METADATA the dependencies."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-{tag}.whl"
    metadata = "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
        name, version, "".join(f"Requires-Dist: {r}\n" for r in requires))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", metadata)
        archive.writestr(f"{name}/__init__.py", "")
    return path


def folder_with(tmp_path: Path, requirements: str) -> Path:
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "requirements.txt").write_text(requirements)
    return tmp_path


def test_the_shipped_example_installs_offline_and_names_its_wheels_for_the_container() -> None:
    assert source_dir_problem(REPO_ROOT, "models/wine-script", "train.py") is None
    assert find_links(SHIPPED) == f"{CONTAINER_CODE_DIR}/wheels"


def test_a_requirement_without_a_vendored_wheel_is_refused_naming_the_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "# comment\ntabulate==0.9.0\nrequests>=2\n")
    wheel(folder / "wheels", "tabulate", "0.9.0")
    problem = offline_requirements_problem(folder, "models/x")
    assert problem is not None and problem.startswith("models/x/requirements.txt line 3 'requests>=2' needs the "
                                                      "network: no wheel in models/x/wheels satisfies")
    assert "pip download --only-binary=:all:" in problem and "\n" not in problem


@pytest.mark.parametrize(("line", "expected"), [
    ("--index-url https://example.org/simple", "pip options are the platform's"),
    ("-e .", "pip options are the platform's"),
    ("-r other.txt", "includes are not followed"),
    ("pkg @ https://example.org/pkg.whl", "needs the network (a URL)"),
    ("not a requirement ===", "is not a requirement"),
    ("foo==1.0 \\", "is not a requirement"),
])
def test_options_includes_urls_and_garbage_are_refused_in_one_line(tmp_path: Path, line: str, expected: str) -> None:
    problem = offline_requirements_problem(folder_with(tmp_path, line + "\n"), "m")
    assert problem is not None and expected in problem and "\n" not in problem


def test_a_file_with_a_byte_order_mark_and_crlf_reads_as_pip_reads_it(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "")
    (folder / "requirements.txt").write_bytes("\ufefftabulate==0.9.0\r\n".encode())
    wheel(folder / "wheels", "tabulate", "0.9.0")
    assert offline_requirements_problem(folder, "m") is None


def test_abi3_wheels_of_an_earlier_python_count_and_a_glibc_too_new_does_not(tmp_path: Path) -> None:
    """pip installs cp3X-abi3 wheels (X < 12) on CPython 3.12 (packaging.tags.cpython_tags)."""
    folder = folder_with(tmp_path, "cryptic==1.0\n")
    wheel(folder / "wheels", "cryptic", "1.0", tag="cp39-abi3-manylinux_2_40_x86_64")
    assert offline_requirements_problem(folder, "m") is not None
    wheel(folder / "wheels", "cryptic", "1.0", tag="cp39-abi3-manylinux_2_28_x86_64")
    assert offline_requirements_problem(folder, "m") is None


def test_the_extras_asked_for_bring_their_dependencies(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "reqs[socks]==2.0\n")
    wheel(folder / "wheels", "reqs", "2.0", requires=('pysocks; extra == "socks"', 'other; extra == "unused"'))
    problem = offline_requirements_problem(folder, "m")
    assert problem is not None and "pysocks" in problem and "other" not in problem
    wheel(folder / "wheels", "PySocks", "1.7.1")
    assert offline_requirements_problem(folder, "m") is None


def test_the_newest_matching_wheel_is_the_one_whose_dependencies_count(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "lib>=1\n")
    wheel(folder / "wheels", "lib", "1.0")
    wheel(folder / "wheels", "lib", "2.0", requires=("needed-by-two",))
    problem = offline_requirements_problem(folder, "m")
    assert problem is not None and "needed-by-two" in problem and "lib-2.0" in problem


def test_a_dependency_the_image_has_at_another_version_is_not_met(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "oldlib==1.0\n")
    wheel(folder / "wheels", "oldlib", "1.0", requires=("numpy<2",))
    problem = offline_requirements_problem(folder, "m", XGBOOST_SCRIPT)
    assert problem is not None and "(the image has numpy 2.1.0)" in problem
    assert image_packages(SKLEARN_SCRIPT)["numpy"] == "2.5.1"


def test_the_image_package_lists_agree_with_the_contract_tiers_pins() -> None:
    """The contract environments install these images' pins (tests/contract/requirements*.txt): each pin there is
    the version the image's lock has (two readings of the same lock files must not disagree)."""
    for kind, pins in ((XGBOOST_SCRIPT, "requirements.txt"), (SKLEARN_SCRIPT, "requirements-sklearn.txt")):
        image = image_packages(kind)
        for line in (REPO_ROOT / "tests" / "contract" / pins).read_text(encoding="utf-8").splitlines():
            if "==" not in line or line.startswith("#"):
                continue
            name, version = line.split("==")
            name = "xgboost" if canonical(name) == "xgboost-cpu" else canonical(name)  # the CPU build, same release
            assert image.get(name) == version, (kind, name, version, image.get(name))


def test_a_wheel_of_the_wrong_version_or_platform_does_not_count(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "fastlib>=2\n")
    wheel(folder / "wheels", "fastlib", "1.0")
    wheel(folder / "wheels", "fastlib", "2.0", tag="cp312-cp312-macosx_11_0_arm64")  # not the image's platform
    wheel(folder / "wheels", "fastlib", "2.1", tag="cp311-cp311-manylinux2014_x86_64")  # not its Python
    assert offline_requirements_problem(folder, "m") is not None
    wheel(folder / "wheels", "fastlib", "2.2", tag="cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64")
    assert offline_requirements_problem(folder, "m") is None


def test_a_dependency_must_be_vendored_too_unless_the_image_has_it(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "toplib\n")
    wheel(folder / "wheels", "toplib", "1.0", requires=("numpy>=1", "deplib", 'winonly; sys_platform == "win32"',
                                                         'extra-only; extra == "fancy"'))
    problem = offline_requirements_problem(folder, "m")
    assert problem is not None and "(a dependency of toplib-1.0-py3-none-any.whl)" in problem and "deplib" in problem
    wheel(folder / "wheels", "deplib", "0.1")
    assert offline_requirements_problem(folder, "m") is None  # numpy is the image's; the markers do not apply


def test_a_listed_requirement_must_be_vendored_even_if_the_image_has_it(tmp_path: Path) -> None:
    """The image's version may not satisfy the team's specifier: what a team lists, it vendors."""
    assert canonical("NumPy") in image_packages(XGBOOST_SCRIPT)
    assert offline_requirements_problem(folder_with(tmp_path, "numpy==2.1.0\n"), "m") is not None


def test_the_folder_must_hold_its_program_and_no_platform_name(tmp_path: Path) -> None:
    root = tmp_path
    (root / "team").mkdir()
    assert "does not exist" in str(source_dir_problem(root, "missing", "train.py"))
    assert "team/train.py does not exist" in str(source_dir_problem(root, "team", "train.py"))
    assert "outside the repository" in str(source_dir_problem(root, "../elsewhere", "train.py"))
    (root / "team" / "train.py").write_text("")
    assert source_dir_problem(root, "team", "train.py") is None
    (root / "team" / "setup.py").write_text("")
    assert "holds ['setup.py'], packaging the toolkit owns" in str(source_dir_problem(root, "team", "train.py"))
    (root / "team" / "setup.py").unlink()
    for shadow in ("json.py", "joblib.py", "mlcore", "sklearn"):
        target = root / "team" / shadow
        target.mkdir() if "." not in shadow else target.write_text("")
        problem = str(source_dir_problem(root, "team", "train.py", SKLEARN_SCRIPT))
        assert f"holds [{shadow!r}], which would shadow" in problem, problem
        target.rmdir() if target.is_dir() else target.unlink()
    (root / "team" / "data.csv").symlink_to("/etc/hostname")
    assert "holds symbolic links ['data.csv']" in str(source_dir_problem(root, "team", "train.py"))
    assert set(PLATFORM_PACKAGES) == {"mlcore", "mlsettings", "pipelines"}


def _with_code(code: dict[str, object]) -> dict[str, object]:
    context = copy.deepcopy(project_context())
    context["models"]["wine-script"]["training"]["code"] = code
    return context


@pytest.mark.parametrize(("code", "message"), [
    ({"kind": "xgboost-script"}, "models.wine-script.environments.dev.training.code.source_dir is missing"),
    ({"kind": "platform", "source_dir": "models/wine-script"}, "source_dir is 'models/wine-script' while kind is "
                                                              "'platform'"),
    ({"kind": "xgboost-script", "source_dir": "models/wine-script", "entry_point": "fit.py"},
     "models/wine-script/fit.py does not exist"),
    ({"kind": "xgboost-script", "source_dir": "models/none"}, "models/none does not exist"),
    ({"kind": "sklearn-script", "source_dir": "models/wine-script"}, "training.code.kind"),
    ({"kind": "xgboost-script", "source_dir": "models/wine-script", "serve_hook": "metrics.py"},
     "models/wine-script/metrics.py defines no top-level predict(model, features)"),
    ({"kind": "platform", "serve_hook": "serve.py"}, "training.code.serve_hook is 'serve.py' while kind is 'platform'"),
])
def test_the_configuration_refuses_a_bad_training_code_entry_in_one_line(code: dict[str, object],
                                                                        message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_environments(_with_code(code))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_a_requirement_that_needs_the_network_fails_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped folder with one more requirement, under a copy of the repository root."""
    import shutil

    from mlsettings.config import model as config_model

    shutil.copytree(REPO_ROOT / "models", tmp_path / "models")  # every model's folder, as in the repository
    team = tmp_path / "models" / "wine-script"
    (team / "requirements.txt").write_text("tabulate==0.9.0\nrequests==2.32.0\n")
    schemas = tmp_path / "pipelines" / "schemas"
    shutil.copytree(REPO_ROOT / "pipelines" / "schemas", schemas)
    monkeypatch.setattr(config_model, "REPO_ROOT", tmp_path)
    with pytest.raises(ConfigError, match=r"models\.wine-script\.environments\.\w+\.training\.code\.source_dir: "
                                          r"models/wine-script/requirements\.txt line 2 'requests==2\.32\.0' needs "
                                          r"the network"):
        load_environments(project_context())


def test_a_sklearn_model_on_a_gpu_instance_is_refused() -> None:
    context = copy.deepcopy(project_context())
    context["models"]["diabetes-sklearn"]["training"]["instance_type"] = "ml.g5.xlarge"
    with pytest.raises(ConfigError, match=r"training\.instance_type is ml\.g5\.xlarge while training\.code\.kind is "
                                          r"'sklearn-script'; allowed: a CPU instance type"):
        load_environments(context)


@pytest.mark.parametrize(("kind", "program", "framework", "metrics"), [
    ("platform", "pipelines.steps.train", "XGBOOST", True),
    ("xgboost-script", "pipelines.steps.script_train", "XGBOOST", True),
    ("sklearn-script", "pipelines/steps/script_train.py", "SKLEARN", False),
])
def test_each_kind_compiles_to_its_program_image_and_framework(kind: str, program: str, framework: str,
                                                               metrics: bool) -> None:
    """sagemaker-containers runs a module name (`python -m`); sagemaker-training 4.8.0 runs a name ending in .py as a
    program and anything else as a shell command, so the scikit-learn image gets the wrapper's path."""
    from pipelines.definition import build_definition
    from pipelines.images import image_for
    from tests.unit.test_pipeline_definition import SETTINGS

    image = image_for(kind)
    built = build_definition(dataclasses.replace(SETTINGS, training_kind=kind, image_uri=image.uri("eu-west-1"),
                                                 framework=image.framework, framework_version=image.framework_version))
    train = next(s for s in built["Steps"] if s["Name"] == "Train")["Arguments"]
    register = next(s for s in built["Steps"][-1]["Arguments"]["IfSteps"] if s["Name"] == "Register")["Arguments"]
    assert train["HyperParameters"]["sagemaker_program"] == program
    assert ("training_kind" in train["HyperParameters"]) is (kind != "platform")
    assert bool(train["AlgorithmSpecification"]["MetricDefinitions"]) is metrics
    assert register["InferenceSpecification"]["Containers"][0]["Framework"] == framework
    assert register["CustomerMetadataProperties"]["training_kind"] == kind
    processing = [s for s in built["Steps"] if s["Type"] == "Processing"]
    assert {s["Arguments"]["AppSpecification"]["ImageUri"] for s in processing} == {image.uri("eu-west-1")}


@pytest.mark.parametrize(("hook", "text", "message"), [
    ("missing.py", None, "models/wine-script/missing.py does not exist"),
    ("hook.py", "def evaluate(:\n", "models/wine-script/hook.py does not parse: SyntaxError"),
    ("hook.py", "def measure(labels, answers, schema):\n    return {}\n", "defines no top-level evaluate"),
    ("hook.py", "def evaluate(labels):\n    return {}\n", "evaluate() takes 1 arguments"),
])
def test_an_evaluation_hook_that_is_not_one_is_refused_at_synth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                hook: str, text: str | None, message: str) -> None:
    import shutil

    from mlsettings.config import model as config_model

    shutil.copytree(REPO_ROOT / "models", tmp_path / "models")
    shutil.copytree(REPO_ROOT / "pipelines" / "schemas", tmp_path / "pipelines" / "schemas")
    if text is not None:
        (tmp_path / "models" / "wine-script" / hook).write_text(text)
    monkeypatch.setattr(config_model, "REPO_ROOT", tmp_path)
    context = copy.deepcopy(project_context())
    context["models"]["wine-script"]["training"]["code"]["evaluate_hook"] = hook
    with pytest.raises(ConfigError) as refused:
        load_environments(context)
    assert "training.code.evaluate_hook: " in str(refused.value) and message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_preprocessing_hook_is_checked_like_an_evaluation_hook(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from mlsettings.config import model as config_model

    shutil.copytree(REPO_ROOT / "models", tmp_path / "models")
    shutil.copytree(REPO_ROOT / "pipelines" / "schemas", tmp_path / "pipelines" / "schemas")
    (tmp_path / "models" / "diabetes-sklearn" / "clean.py").write_text("def clean(frame):\n    return frame\n")
    monkeypatch.setattr(config_model, "REPO_ROOT", tmp_path)
    with pytest.raises(ConfigError, match=r"training\.code\.preprocess_hook: models/diabetes-sklearn/clean\.py's "
                                          r"clean\(\) takes 1 arguments; allowed: clean\(frame, schema\)"):
        load_environments(project_context())


def test_a_hook_needs_a_teams_folder_and_reaches_the_evaluate_step() -> None:
    from pipelines.definition import build_definition
    from tests.unit.test_pipeline_definition import SETTINGS

    context = copy.deepcopy(project_context())
    context["models"]["breast-cancer"].setdefault("training", {})["code"] = {"evaluate_hook": "metrics.py"}
    with pytest.raises(ConfigError, match=r"evaluate_hook is 'metrics.py' while kind is 'platform'"):
        load_environments(context)
    built = build_definition(dataclasses.replace(SETTINGS, training_kind="xgboost-script",
                                                 evaluate_hook="metrics.py"))
    evaluate = next(s for s in built["Steps"] if s["Name"] == "Evaluate")["Arguments"]["AppSpecification"]
    assert evaluate["ContainerArguments"][-2:] == ["--team-hook", "/opt/ml/code/metrics.py"]
    plain = next(s for s in build_definition(SETTINGS)["Steps"] if s["Name"] == "Evaluate")
    assert "--team-hook" not in plain["Arguments"]["AppSpecification"]["ContainerArguments"]
    built = build_definition(dataclasses.replace(SETTINGS, training_kind="sklearn-script", preprocess_hook="clean.py"))
    preprocess = next(s for s in built["Steps"] if s["Name"] == "Preprocess")["Arguments"]["AppSpecification"]
    assert preprocess["ContainerArguments"][-2:] == ["--team-hook", "/opt/ml/code/clean.py"]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_sklearn_estimator_answers_in_xgboosts_shape_for_its_kind(kind: str) -> None:
    """The handler's predictor (chosen once per model): binary the positive class's probability, multiclass every
    class's probability, regression the value — what mlcore.outputs reads from an XGBoost booster."""
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from pipelines.serving.inference import SKLEARN, predictor

    x = np.arange(40, dtype=float).reshape(20, 2)
    labels = {"binary": np.arange(20) % 2, "multiclass": np.arange(20) % 3, "regression": np.arange(20) * 1.5}[kind]
    estimator = (LinearRegression() if kind == "regression" else LogisticRegression()).fit(x, labels)
    answer = predictor(estimator, SKLEARN, kind)(x[:4])
    if kind == "binary":
        assert np.allclose(answer, estimator.predict_proba(x[:4])[:, 1])
    elif kind == "multiclass":
        assert answer.shape == (4, 3) and np.allclose(answer, estimator.predict_proba(x[:4]))
    else:
        assert np.allclose(answer, estimator.predict(x[:4]))


# ------------------------------------------------------------------------------------- an own image (kind "image")
def _with_image_code(code: dict[str, object]) -> dict[str, object]:
    context = copy.deepcopy(project_context())
    context["models"]["cancer-image"]["training"]["code"] = code
    return context


DIGEST = "sha256:" + "5e" * 32


@pytest.mark.parametrize(("code", "message"), [
    ({"kind": "image", "source_dir": "examples/byoc", "image_digest": "latest"},
     "training.code.image_digest is 'latest'; allowed: a digest, sha256:<64 lowercase hex digits>"),
    ({"kind": "image", "source_dir": "examples/byoc", "image_digest": "sha256:ABC"}, "never a tag, which can be moved"),
    ({"kind": "image", "image_digest": DIGEST}, "training.code.source_dir is missing; allowed: the image's folder"),
    ({"kind": "image", "source_dir": "models/wine-script", "image_digest": DIGEST},
     "models/wine-script has no train and no serve program"),
    ({"kind": "image", "source_dir": "examples/byoc", "image_digest": DIGEST, "evaluate_hook": "metrics.py"},
     "training.code.evaluate_hook is set while kind is 'image'"),
    ({"kind": "xgboost-script", "source_dir": "models/wine-script", "image_digest": DIGEST},
     "training.code.image_digest is set while kind is 'xgboost-script'"),
])
def test_the_configuration_refuses_a_bad_own_image_entry_in_one_line(code: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_environments(_with_image_code(code))
    assert message in str(refused.value) and "\n" not in str(refused.value)
