"""Where the CLI finds an environment's deployed resources.

Every stack publishes the names the operator tooling needs as SSM String parameters under
``/mlops/<env>/<key>`` (see ``stacks``), so the CLI never guesses physical names and works the same
against AWS and against moto in the demo and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.errors import OperatorError
from mlsettings.vocabulary import PARAMETER_PREFIX, Published


def parameter_name(environment: str, key: str) -> str:
    return f"{PARAMETER_PREFIX}/{environment}/{key}"


@dataclass(frozen=True)
class DeployedResources:
    """The published names of one environment, read once per command."""

    environment: str
    values: Mapping[str, str]

    model: str | None = None

    def for_model(self, model: str) -> DeployedResources:
        """The same names, where a model's own (its endpoint, group, pipeline, …) are ``model``'s."""
        return DeployedResources(environment=self.environment, values=self.values, model=model)

    def __getitem__(self, key: str) -> str:
        if self.model is not None and Published.for_model(self.model, key) in self.values:
            return self.values[Published.for_model(self.model, key)]
        try:
            return self.values[key]
        except KeyError:
            raise OperatorError(
                f"environment {self.environment!r} publishes no {parameter_name(self.environment, key)!r}; "
                f"is the stack that owns it deployed? published: {sorted(self.values)}"
            ) from None


def load_resources(environment: str, ssm_client: Any) -> DeployedResources:
    prefix = f"{PARAMETER_PREFIX}/{environment}/"
    values: dict[str, str] = {}
    paginator = ssm_client.get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=prefix, Recursive=True):
        for parameter in page["Parameters"]:
            values[parameter["Name"].removeprefix(prefix)] = parameter["Value"]
    return DeployedResources(environment=environment, values=values)
