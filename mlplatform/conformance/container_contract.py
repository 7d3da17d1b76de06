"""SageMaker's contract for a training and serving image of one's own, as the check relies on it. Each rule names
the page of the SageMaker Developer Guide (or API reference) it comes from; nothing here is this product's choice
unless it says so.

Training ("How Amazon SageMaker AI Provides Training Information", "How Amazon SageMaker AI Runs Your Training
Image"):
SageMaker runs ``docker run <image> train``; the program reads ``/opt/ml/input/config/hyperparameters.json``,
``inputdataconfig.json`` and ``resourceconfig.json`` and the channels under ``/opt/ml/input/data/<channel>/``;
whatever it leaves in ``/opt/ml/model`` becomes ``model.tar.gz`` ("How Amazon SageMaker AI Processes Training
Output"). It signals the outcome by its exit code and may explain a failure in ``/opt/ml/output/failure``
("How Amazon SageMaker AI Signals Algorithm Success and Failure").

Hosting ("Custom Inference Code with Hosting Services"): SageMaker runs ``docker run <image> serve`` with the model
artifact extracted to ``/opt/ml/model``; the container answers ``GET /ping`` with 200 and ``POST /invocations`` on
port 8080, and must stop on SIGTERM (SIGKILL follows 30 s later). Requests pass ``Content-Type`` and ``Accept``
through from InvokeEndpoint, whose API reference says the model container must answer within 60 seconds.

Network isolation (API reference, ``EnableNetworkIsolation`` of CreateTrainingJob and CreateModel): "No inbound or
outbound network calls can be made" from the container; the product sets it on every job and model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlcore.outputs import answer_lines
from mlsettings.training_code import IMAGE_PROGRAMS

# "How Amazon SageMaker AI Provides Training Information": the paths SageMaker mounts into a training container.
OPT_ML = "/opt/ml"
CONFIG_DIR = f"{OPT_ML}/input/config"
DATA_DIR = f"{OPT_ML}/input/data"
MODEL_DIR = f"{OPT_ML}/model"
FAILURE_FILE = f"{OPT_ML}/output/failure"
HYPERPARAMETERS_FILE = "hyperparameters.json"
INPUT_DATA_CONFIG_FILE = "inputdataconfig.json"
RESOURCE_CONFIG_FILE = "resourceconfig.json"
# "Use your own training algorithms" / "Custom Inference Code with Hosting Services": the image's argument.
TRAIN_PROGRAM, SERVE_PROGRAM = IMAGE_PROGRAMS  # mlsettings.training_code: the configuration checks them too
# "Custom Inference Code with Hosting Services": the web server's port and paths. SAGEMAKER_BIND_TO_PORT names
# another port only where SageMaker sets it (inference pipelines); a single-container endpoint uses 8080.
SERVING_PORT = 8080
PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
# InvokeEndpoint API reference: "A customer's model containers must respond to requests within 60 seconds."
INVOCATION_TIMEOUT_SECONDS = 60.0
# "Custom Inference Code with Hosting Services": SageMaker stops a container with SIGTERM and SIGKILL 30 s later.
STOP_GRACE_SECONDS = 30.0
# This check's own bounds (SageMaker waits longer: ProductionVariant.ContainerStartupHealthCheckTimeoutInSeconds,
# the training job's MaxRuntimeInSeconds); a conformance run should be quick.
PING_STARTUP_SECONDS = 30.0
TRAIN_TIMEOUT_SECONDS = 300.0
# The one host a single-instance job has ("How Amazon SageMaker AI Provides Training Information", distributed
# training configuration: hosts are named algo-1, algo-2, ...).
HOST_NAME = "algo-1"


@dataclass(frozen=True, kw_only=True)
class Channel:
    """One training channel as CreateTrainingJob's InputDataConfig declares it (File mode, S3Prefix)."""

    name: str
    content_type: str
    input_mode: str = "File"
    distribution: str = "FullyReplicated"


def hyperparameters_document(hyperparameters: Mapping[str, Any]) -> str:
    """``hyperparameters.json``: "SageMaker AI makes the hyperparameters in a CreateTrainingJob request available in
    the Docker container in the /opt/ml/input/config/hyperparameters.json file" — a flat object whose values are
    strings (CreateTrainingJob's ``HyperParameters`` is a string-to-string map)."""
    return json.dumps({str(name): _text(value) for name, value in hyperparameters.items()}, indent=2) + "\n"


def input_data_config_document(channels: tuple[Channel, ...]) -> str:
    """``inputdataconfig.json``: one entry per channel of the request's InputDataConfig, keyed by channel name, with
    ``ContentType``, ``TrainingInputMode``, ``S3DistributionType`` and ``RecordWrapperType`` (the Developer Guide's
    "Input Data Configuration" example)."""
    return json.dumps({channel.name: {"ContentType": channel.content_type,
                                      "TrainingInputMode": channel.input_mode,
                                      "S3DistributionType": channel.distribution,
                                      "RecordWrapperType": "None"} for channel in channels}, indent=2) + "\n"


def resource_config_document(instance_type: str) -> str:
    """``resourceconfig.json`` of a one-instance job ("How Amazon SageMaker AI Provides Training Information",
    distributed training configuration): ``current_host``, ``hosts`` and ``network_interface_name``, with the
    instance type the job runs on."""
    return json.dumps({"current_host": HOST_NAME, "current_instance_type": instance_type, "hosts": [HOST_NAME],
                       "network_interface_name": "eth0"}, indent=2) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def count_rows(body: bytes, content_type: str) -> int | None:
    """How many answers a response holds, read generically: a JSON list, or the one list of a JSON object (e.g.
    ``{"predictions": [...]}``); JSON Lines and every text type one answer per line. ``None`` when the body does not
    parse as its type says."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if media == "application/json":
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if isinstance(doc, list):
            return len(doc)
        if isinstance(doc, dict):
            lists = [value for value in doc.values() if isinstance(value, list)]
            return len(lists[0]) if len(lists) == 1 else 1
        return 1
    return len(answer_lines(text))  # the platform's reading: an empty line is an unscored row's answer
