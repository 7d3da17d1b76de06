"""A part of a model's stack: one concern (training, serving, the inference API, monitoring) as a construct
whose resources land in the model's one stack, with the stack's partition, region and account at hand."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from mlsettings.config import EnvironmentConfig


class StackPart(Construct):
    config: EnvironmentConfig
    """The model's view of the environment (``EnvironmentConfig.for_model``)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config

    @property
    def stack(self) -> cdk.Stack:
        return cdk.Stack.of(self)

    @property
    def partition(self) -> str:
        return self.stack.partition

    @property
    def region(self) -> str:
        return self.stack.region

    @property
    def account(self) -> str:
        return self.stack.account

    def to_json_string(self, obj: Any) -> str:
        return self.stack.to_json_string(obj)
