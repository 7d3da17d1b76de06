"""The XGBoost framework's glue between the toolkit and a user script, for the contract tier.

In the SageMaker XGBoost 3.2-0 image the toolkit (sagemaker-containers, installed here for real) hands
control to ``sagemaker_xgboost_container.training:main`` and ``sagemaker_xgboost_container.serving:main``
(the image's SAGEMAKER_TRAINING_MODULE / SAGEMAKER_SERVING_MODULE). That package is built from
aws/sagemaker-xgboost-container and is not on PyPI, so the few calls its script-mode paths make are restated
here, in the order they make them (read at commit cb8df91, src/sagemaker_xgboost_container/training.py and
serving.py). Everything these functions call is the real toolkit.

Runs inside the contract virtual environment (the image's Python and pins), never in the project's.
"""

from __future__ import annotations

import importlib
import sys

import sagemaker_containers.beta.framework as framework
from sagemaker_containers.beta.framework import env, transformer, worker

USER_HOOKS = ("input_fn", "predict_fn", "output_fn")


def train_main() -> None:
    """training.main: ``train(framework.training_env())``, script-mode branch (a sagemaker_program is set)."""
    training_env = framework.training_env()
    if training_env.user_entry_point is None:
        raise SystemExit("no sagemaker_program: algorithm mode, which the pipeline does not use")
    framework.modules.run_module(training_env.module_dir, training_env.to_cmd_args(),
                                 training_env.to_env_vars(), training_env.module_name, capture_error=False)
    sys.exit(0)


def serving_app() -> worker.Worker:
    """serving.main's first request: import the user module, build its transformer, initialize, wrap in a Worker."""
    serving_env = env.ServingEnv()
    user_module = importlib.import_module(serving_env.module_name)
    transform_fn = getattr(user_module, "transform_fn", None)
    hooks = {name: getattr(user_module, name, None) for name in USER_HOOKS}
    if transform_fn is not None and any(hooks.values()):
        # serving._user_module_transformer raises exc.UserError here.
        raise RuntimeError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")
    if transform_fn is not None:
        user_transformer = transformer.Transformer(model_fn=user_module.model_fn, transform_fn=transform_fn)
    else:
        missing = [name for name, hook in hooks.items() if hook is None]
        if missing:
            # The framework would use its own default_*_fn (xgboost DMatrix decoding); not restated here.
            raise RuntimeError(f"the user module lacks {missing}; the framework defaults are not reproduced")
        user_transformer = transformer.Transformer(model_fn=user_module.model_fn, **hooks)
    user_transformer.initialize()
    return worker.Worker(transform_fn=user_transformer.transform, module_name=serving_env.module_name)
