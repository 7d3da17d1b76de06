"""The scikit-learn framework's glue between the toolkits and a user script, for the contract tier.

In the SageMaker scikit-learn 1.9-0 image (aws/deep-learning-containers docker/sklearn/1.9-0/Dockerfile)
``SAGEMAKER_TRAINING_MODULE=sagemaker_sklearn_container.training:main`` and
``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main``; that package is a prebuilt wheel, not on
the package index, so the calls its script-mode paths make are restated here, in the order they make them (read at
aws/sagemaker-scikit-learn-container eae7b6b, src/sagemaker_sklearn_container/training.py and serving.py).
Everything these functions call is the real toolkit: sagemaker-training 4.8.0 for training, sagemaker-containers
2.8.6.post2 for serving, at the image's pins (tests/contract/requirements-sklearn.txt).

Runs inside the contract environment of that image, never in the project's.
"""

from __future__ import annotations

import importlib

import numpy as np
from sagemaker_containers.beta.framework import content_types, encoders, env, transformer, worker
from sagemaker_training import entry_point, environment, runner


def train_main() -> None:
    """training.main: ``train(environment.Environment())`` runs the user entry point as a process."""
    training_environment = environment.Environment()
    entry_point.run(uri=training_environment.module_dir, user_entry_point=training_environment.user_entry_point,
                    args=training_environment.to_cmd_args(), env_vars=training_environment.to_env_vars(),
                    runner_type=runner.ProcessRunnerType)


def _default_input_fn(input_data, content_type):  # type: ignore[no-untyped-def]
    array = encoders.decode(input_data, content_type)
    return array.astype(np.float32) if content_type in content_types.UTF8_TYPES else array


def _default_predict_fn(input_data, model):  # type: ignore[no-untyped-def]
    return model.predict(input_data)


def _default_output_fn(prediction, accept):  # type: ignore[no-untyped-def]
    return worker.Response(encoders.encode(prediction, accept), accept, mimetype=accept)


def serving_app() -> worker.Worker:
    """serving.main's first request: import the user module, build its transformer (serving._user_module_transformer:
    transform_fn with model_fn, else the user's or the default input/predict/output functions), initialize it, wrap
    it in a Worker."""
    serving_env = env.ServingEnv()
    user_module = importlib.import_module(serving_env.module_name)
    model_fn = getattr(user_module, "model_fn", transformer.default_model_fn)
    transform_fn = getattr(user_module, "transform_fn", None)
    hooks = {name: getattr(user_module, name, None) for name in ("input_fn", "predict_fn", "output_fn")}
    if transform_fn is not None and any(hooks.values()):
        raise RuntimeError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    if transform_fn is not None:
        user_transformer = transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    else:
        user_transformer = transformer.Transformer(
            model_fn=model_fn, input_fn=hooks["input_fn"] or _default_input_fn,
            predict_fn=hooks["predict_fn"] or _default_predict_fn, output_fn=hooks["output_fn"] or _default_output_fn)
    user_transformer.initialize()
    return worker.Worker(transform_fn=user_transformer.transform, module_name=serving_env.module_name,
                         execution_parameters_fn=getattr(user_module, "execution_parameters_fn", None))
