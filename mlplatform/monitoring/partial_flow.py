"""The per-object function's work: one captured object that just landed → its partial result in S3.

S3 "Object Created" (through EventBridge) names the object; its key says whose traffic it is
(``<capture prefix>/<endpoint>/<Variant>/yyyy/mm/dd/hh/…`` is that variant's data capture,
``<prediction-log prefix>/yyyy/mm/dd/hh/…`` the inference API's log, which joins the prediction-log variant's
window). The variant's model and baseline are resolved as the drift run resolves them (SSM → registry → S3,
``variant_models``); the object is read once and reduced to ``mlcore.drift.partials.object_partial``, which is
written next to the other partial results (``partial_store``). The scheduled drift run merges them.

Counted against the baseline the variant serves *now*: if a new model is deployed before the window run, the
run finds the partial result stale (another baseline) and counts the object itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mlcore.drift.partials import object_partial
from mlcore.drift.run import SourceKind
from mlplatform.monitoring.capture_window import s3_line_source
from mlplatform.monitoring.partial_store import partial_key, write_partial
from mlplatform.monitoring.variant_models import VariantModel, parameter_name, resolve_variant_models
from mlsettings.functions.contracts import DriftPartialsEnvironment


@dataclass(frozen=True)
class PartialClients:
    s3: Any
    sagemaker: Any
    ssm: Any


@dataclass
class BaselineCache:
    """Resolved models by package ARN, kept per execution environment (the SSM parameter is read every time, so
    a new deployment is seen at once)."""

    models: dict[str, VariantModel] = field(default_factory=dict)


def object_route(env: DriftPartialsEnvironment, bucket: str, key: str) -> tuple[str, SourceKind] | None:
    """``(variant, kind)`` of a captured object of this endpoint, or None for any other key."""
    if bucket != env.capture_bucket:
        return None
    lead = f"{env.capture_prefix}/" if env.capture_prefix else ""
    capture = f"{lead}{env.endpoint_name}/"
    if key.startswith(capture):
        variant = key[len(capture):].split("/", 1)[0]
        return (variant, "endpoint_capture") if variant and "/" in key[len(capture):] else None
    if env.prediction_log_prefix and key.startswith(f"{env.prediction_log_prefix}/"):
        return env.prediction_log_variant, "prediction_log"
    return None


def _model(env: DriftPartialsEnvironment, clients: PartialClients, variant: str, cache: BaselineCache) -> VariantModel:
    try:
        name = parameter_name(env.variant_parameter_prefix, variant)
        arn = clients.ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError:
        arn = None  # resolving says why
    if arn is not None and arn in cache.models:
        return cache.models[arn]
    model = resolve_variant_models(sagemaker=clients.sagemaker, ssm=clients.ssm, s3=clients.s3, variants=[variant],
                                   parameter_prefix=env.variant_parameter_prefix)[0]
    if model.model_package_arn is not None and model.baseline is not None:
        cache.models[model.model_package_arn] = model
    return model


def reduce_object(env: DriftPartialsEnvironment, clients: PartialClients, *, bucket: str, key: str,
                  size: int | None, etag: str | None, now: datetime, cache: BaselineCache) -> dict[str, Any]:
    """Write the partial result of one object; returns what was done (or why nothing was)."""
    route = object_route(env, bucket, key)
    if route is None:
        return {"object": f"s3://{bucket}/{key}", "skipped": "not captured traffic of this endpoint"}
    variant, kind = route
    model = _model(env, clients, variant, cache)
    if model.baseline is None:
        # The window run reports the variant as skipped for the same reason.
        return {"object": f"s3://{bucket}/{key}", "variant": variant, "skipped": model.skip_reason}
    source = s3_line_source(clients.s3, bucket=bucket, key=key, kind=kind, size=size, etag=etag)
    document = object_partial(source, variant=variant, baseline=model.baseline, now=now)
    target = partial_key(env.partials_prefix, key)
    write_partial(clients.s3, bucket=env.report_bucket, key=target, document=document)
    return {"object": source.name, "variant": variant, "kind": kind, "partial": f"s3://{env.report_bucket}/{target}",
            "records": document["records"], "rows": document["state"]["rows"],
            "malformed": sum(document["state"]["malformed"].values()), "unreadable": document["unreadable"]}
