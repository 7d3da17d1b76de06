"""Runs the synthesized pipeline's jobs as SageMaker would start them, in the contract container.

What SageMaker's platform does around a job (download inputs to their LocalPath, write the training job's
config files, tar /opt/ml/model into model.tar.gz, keep the checkpoint folder across a spot restart) is done
here by hand, from the step's own arguments; what runs inside the container is the step's own
``ContainerEntrypoint`` + ``ContainerArguments`` (Processing) or the toolkit's ``train`` entry (Training).
Pipeline expressions are resolved the way SageMaker Pipelines resolves them, with ``file://`` folders
standing in for the S3 prefixes of earlier steps' outputs.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.contract.container import XGBOOST_IMAGE, Container, ContractImage, fail_with_logs, harness_env
from tests.contract.synthesized import SynthesizedTraining

EXECUTION_ID = "contract0execution"


class JobFailedError(AssertionError):
    pass


@dataclass
class LocalPipeline:
    synthesized: SynthesizedTraining
    workdir: Path
    parameters: dict[str, Any] = field(default_factory=dict)  # overrides of the definition's defaults
    outputs: dict[str, dict[str, Path]] = field(default_factory=dict)  # step → output name → folder
    model_artifact: Path | None = None
    logs: dict[str, str] = field(default_factory=dict)
    image: ContractImage = XGBOOST_IMAGE
    """The framework image every job and the model of this pipeline run in (the model's kind of training code)."""

    # ------------------------------------------------------------------------------------------ expressions
    def step(self, name: str) -> dict[str, Any]:
        from pipelines.definition import iter_steps

        (found,) = [s for s in iter_steps(self.synthesized.definition) if s["Name"] == name]
        return found

    def parameter(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        (declared,) = [p for p in self.synthesized.definition["Parameters"] if p["Name"] == name]
        return declared["DefaultValue"]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, Mapping):
            return value
        if set(value) == {"Get"}:
            return self._get(str(value["Get"]))
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join["On"]).join(str(self.resolve(v)) for v in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            return self._json_get(value["Std:JsonGet"])
        return {k: self.resolve(v) for k, v in value.items()}

    def _get(self, reference: str) -> Any:
        if reference.startswith("Parameters."):
            return self.parameter(reference.removeprefix("Parameters."))
        if reference == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        if reference == "Execution.PipelineExecutionArn":
            return f"arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/{EXECUTION_ID}"
        step, _, path = reference.removeprefix("Steps.").partition(".")
        if path.startswith("ProcessingOutputConfig.Outputs['"):
            output = path.split("'")[1]
            return self.outputs[step][output].as_uri()
        if path == "ModelArtifacts.S3ModelArtifacts":
            assert self.model_artifact is not None, f"{step} has not produced a model"
            return self.model_artifact.as_uri()
        if path == "TrainingJobName":
            return f"pipelines-{EXECUTION_ID}-{step}"
        raise ValueError(f"unsupported reference {reference}")

    def _json_get(self, spec: Mapping[str, Any]) -> Any:
        step = spec["PropertyFile"]["Get"].split(".")[1]
        name = spec["PropertyFile"]["Get"].split(".")[-1]
        (property_file,) = [p for p in self.step(step)["PropertyFiles"] if p["PropertyFileName"] == name]
        document: Any = json.loads((self.outputs[step][property_file["OutputName"]] /
                                    property_file["FilePath"]).read_text())
        for part in spec["Path"].split("."):
            document = document[part]
        return document

    # ------------------------------------------------------------------------------------------ inputs
    def place(self, uri: str, folder: Path) -> None:
        """Download what ``uri`` names into ``folder``, as an S3Prefix File-mode input does."""
        folder.mkdir(parents=True, exist_ok=True)
        asset = self.synthesized.asset_for_uri(uri)
        if asset is not None:
            shutil.copy2(asset.source, folder / asset.file_name)
            return
        if not uri.startswith("file://"):
            raise ValueError(f"{uri} is neither a CDK asset of this assembly nor a local stand-in")
        source = Path(uri.removeprefix("file://"))
        if source.is_dir():
            shutil.copytree(source, folder, dirs_exist_ok=True)
        else:
            shutil.copy2(source, folder / source.name)

    # ------------------------------------------------------------------------------------------ jobs
    def run_processing(self, name: str) -> Container:
        args = self.resolve(self.step(name)["Arguments"])
        container = Container(self.workdir / name, self.image)
        for spec in args["ProcessingInputs"]:
            self.place(spec["S3Input"]["S3Uri"], container.path(spec["S3Input"]["LocalPath"]))
        outputs = {o["OutputName"]: container.path(o["S3Output"]["LocalPath"])
                   for o in args["ProcessingOutputConfig"]["Outputs"]}
        for folder in outputs.values():
            folder.mkdir(parents=True, exist_ok=True)
        app = args["AppSpecification"]
        argv = [container.reroot(str(part)) for part in app["ContainerEntrypoint"] + app["ContainerArguments"]]
        result = container.run(argv, env=args.get("Environment", {}))
        self.logs[name] = result.stdout + result.stderr
        if result.returncode != 0:
            raise JobFailedError(fail_with_logs(result, f"processing step {name}"))
        self.outputs[name] = outputs
        return container

    def training_container(self, extra_hyperparameters: Mapping[str, str] | None = None) -> Container:
        args = self.resolve(self.step("Train")["Arguments"])
        container = Container(self.workdir / "Train", self.image)
        config = container.path("/opt/ml/input/config")
        config.mkdir(parents=True, exist_ok=True)
        hyperparameters = {k: container.reroot(str(v)) for k, v in args["HyperParameters"].items()}
        hyperparameters.update(extra_hyperparameters or {})
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps({
            c["ChannelName"]: {"ContentType": c["ContentType"], "TrainingInputMode": c["InputMode"],
                               "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}
            for c in args["InputDataConfig"]}))
        (config / "resourceconfig.json").write_text(json.dumps({
            "current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0",
            "current_instance_type": args["ResourceConfig"]["InstanceType"]}))
        if "CheckpointConfig" in args:
            (config / "checkpointconfig.json").write_text(json.dumps(args["CheckpointConfig"]))
        for channel in args["InputDataConfig"]:
            folder = container.path(f"/opt/ml/input/data/{channel['ChannelName']}")
            shutil.rmtree(folder, ignore_errors=True)  # a restarted job gets its channels anew
            self.place(channel["DataSource"]["S3DataSource"]["S3Uri"], folder)
        # A restarted job is a new container: fresh code, model and output folders and a fresh image
        # (only the checkpoint folder comes back).
        for folder in ("/opt/ml/code", "/opt/ml/model", "/opt/ml/output"):
            shutil.rmtree(container.path(folder), ignore_errors=True)
        shutil.rmtree(f"{container.root}.python", ignore_errors=True)
        return container

    def run_training(self, *, extra_hyperparameters: Mapping[str, str] | None = None,
                     expect_failure: bool = False) -> tuple[Container, str]:
        """One training job start (the checkpoint folder survives between starts, as SageMaker restores it)."""
        args = self.resolve(self.step("Train")["Arguments"])
        container = self.training_container(extra_hyperparameters)
        env = {**args.get("Environment", {}), **self.image.training_env,
               **harness_env({"SAGEMAKER_TRAINING_MODULE": f"{self.image.glue}:train_main"}, self.image)}
        # The image's `train` console script: sagemaker_containers.cli.train:main (XGBoost) or
        # sagemaker_training.cli.train:main (scikit-learn), which import SAGEMAKER_TRAINING_MODULE and call it.
        result = container.run([str(container.python()), "-m", self.image.train_cli], env=env)
        log = result.stdout + result.stderr
        if expect_failure:
            if result.returncode == 0:
                raise JobFailedError("the training job was expected to fail (interruption) but succeeded")
            return container, log
        if result.returncode != 0:
            raise JobFailedError(fail_with_logs(result, "training job"))
        # The platform, not the container, packs /opt/ml/model into <S3OutputPath>/<job>/output/model.tar.gz.
        artifact = self.workdir / "artifacts" / "model.tar.gz"
        artifact.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(artifact, "w:gz") as tar:
            for path in sorted(container.path("/opt/ml/model").iterdir()):
                tar.add(path, arcname=path.name)
        self.model_artifact = artifact
        return container, log

    def serving_environment(self) -> dict[str, str]:
        """The model's Environment as the Register step registers it (the deployer's CreateModel uses the package)."""
        register = self.resolve(self.step("Register")["Arguments"])
        return dict(register["InferenceSpecification"]["Containers"][0]["Environment"])

    def served_model(self, name: str = "Serve") -> Container:
        """A model container: the artifact unpacked into /opt/ml/model, as SageMaker does before `serve`."""
        assert self.model_artifact is not None
        container = Container(self.workdir / name, self.image)
        shutil.rmtree(container.root, ignore_errors=True)
        shutil.rmtree(f"{container.root}.python", ignore_errors=True)
        model_dir = container.path("/opt/ml/model")
        model_dir.mkdir(parents=True)
        with tarfile.open(self.model_artifact, "r:gz") as tar:
            tar.extractall(model_dir, filter="data")
        return container


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes


def serve(container: Container, environment: Mapping[str, str],
          requests: list[tuple[str, str, Mapping[str, str], bytes]]) -> list[HttpAnswer]:
    """Start the model container (`serve`'s install, then the framework's WSGI app) and send ``requests``
    (method, path, headers, body), in order, to the same worker."""
    import base64

    from tests.contract.container import HARNESS

    payload = {"requests": [{"method": method, "path": path, "headers": dict(headers),
                             "body_b64": base64.b64encode(body).decode()} for method, path, headers, body in requests]}
    result = container.run([str(container.python()), str(HARNESS / "serve.py")],
                           env={**environment, **harness_env(image=container.image)}, stdin=json.dumps(payload))
    marker = "----contract-responses----\n"
    if result.returncode != 0 or marker not in result.stdout:
        raise JobFailedError(fail_with_logs(result, "model container"))
    responses = json.loads(result.stdout.split(marker, 1)[1])["responses"]
    return [HttpAnswer(status=r["status"], content_type=r["headers"].get("Content-Type", ""),
                       body=base64.b64decode(r["body_b64"])) for r in responses]
