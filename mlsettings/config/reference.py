"""The configuration reference (docs/CONFIGURATION.md): generated from the fields' docs and defaults."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from mlsettings.config.model import EnvironmentConfig, ModelSettings
from mlsettings.config.parsing import json_key, type_name


def to_plain(value: Any) -> Any:
    """A config object as JSON-ready data, with the cdk.json key names."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {json_key(f.name): to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.metadata.get("derived")}
    if isinstance(value, tuple):
        return [to_plain(v) for v in value]
    return value


def reference_rows(cls: type[Any] = EnvironmentConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key path, type, default, doc) for every setting, depth first: the configuration reference."""
    rows: list[tuple[str, str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("derived"):
            continue  # set by the parser, not a key of cdk.json
        key = f"{prefix}{json_key(f.name)}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.append((key, "object", "", f.metadata["doc"]))
            rows.extend(reference_rows(typing.cast(type[Any], tp), f"{key}."))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(to_plain(f.default)).replace("None", "null").replace("True", "true") \
                .replace("False", "false")
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(list(f.default_factory()))
        else:
            default = "(required)"
        rows.append((key, type_name(tp), default, f.metadata["doc"]))
    return rows


MODELS_SECTION = (
    "## Models (`context.models.<name>`)",
    "",
    "Each model is an entry of `context.models`, keyed by its name (lowercase words joined by '-'). Besides the",
    "keys below, an entry may carry `training`, `serving`, `inference_api` and `monitoring` sections, and",
    "`environments.<env>.<section>`: each is deep-merged over the environment's section of the same name for",
    "this model only (the environment's, then the model's, then the model's for that environment), with the",
    "same keys and checks as above. Settings of the environment as a whole are refused there",
    "(`serving.served_stages`, `monitoring.alarms.page|ticket`), and `training.schema_file` is the entry's",
    "`schema_file`. Every name derived from a model (endpoint, group, pipeline, roles, functions) is checked",
    "against its service's limit; docs/MODELS.md explains how a team adds, changes and retires a model.",
)

CONCURRENCY_QUOTA_SECTION = (
    "## Lambda concurrency quota",
    "",
    "Lambda keeps 100 of an account's concurrent executions per region unreserved and refuses a deployment whose",
    "reserved concurrency would leave less (a new account's quota can be far below the default 1,000). Synth",
    "therefore sums, over every environment that shares an account and region, the reserved concurrency of",
    "every function, and fails naming `lambda.account_concurrency_quota` unless the quota minus that sum is at",
    "least the larger of 100 and the inference functions' SLA demand.",
    "",
    "- Reserved per environment: `lambda.reserved_concurrency` for the promotion gate (registry environment",
    "  only), and per model 7 (four deployer tasks, health check, batch scoring and drift monitor, 1 each) + 4",
    "  for the drift partials function where the model's `monitoring.drift.engine` is `partials`.",
    "- Each model's inference function is unreserved; its SLA demand is",
    "  `ceil(serving.sla.peak_requests_per_second x inference_api.max_attempts x",
    "  (1 s connect + inference_api.endpoint_timeout_ms) x 1.5)`: the concurrency Little's law gives when",
    "  every request at the peak rate uses its whole endpoint timeout budget, with 50 % headroom.",
    "- The quota to request (Service Quotas, AWS Lambda, 'Concurrent executions', L-B99A9384) is at least",
    "  the reserved sum + max(100, the sum of the SLA demands) of the environments sharing the account and",
    "  region; the synth error states both numbers. docs/VERIFICATION.md gives them for this repository's",
    "  cdk.json.",
)


def render_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from `mlsettings/config/` by `mlops config reference`; a test fails when this page is stale.",
        "Settings live in `cdk.json` under `context.defaults` (shared) and `context.environments.<name>`",
        "(per environment, deep-merged over the defaults), and each model is an entry of `context.models`",
        "(below). A wrong key or value fails `cdk synth` with a message naming the key path, the value and",
        "what is allowed.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for key, tp, default, doc in reference_rows():
        lines.append(f"| `{key}` | {tp} | {f'`{default}`' if default else ''} | {doc} |")
    lines += ["", *MODELS_SECTION, "", "| key | type | default | meaning |", "|---|---|---|---|"]
    for key, tp, default, doc in reference_rows(ModelSettings, "models.<name>."):
        lines.append(f"| `{key}` | {tp} | {f'`{default}`' if default else ''} | {doc} |")
    lines += ["", *CONCURRENCY_QUOTA_SECTION]
    return "\n".join(lines) + "\n"
