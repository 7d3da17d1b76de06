"""Drift at any traffic: the names the per-object partial-results function, the drift monitor, the sharded
Processing job and their stack share (issue 28). Standard library only.

* Each captured object (endpoint data capture, the inference API's prediction log) is reduced, when it lands, to
  a partial result at ``<PARTIALS_PREFIX>/<the object's key>.partial.json`` in the report bucket, by the function
  ``PARTIALS_FUNCTION`` (S3 "Object Created" events through EventBridge).
* With ``monitoring.drift.engine: partials`` the scheduled drift run merges them (``mlcore.drift.partials``);
  with ``processing`` a Processing job over several instances (``ShardedByS3Key``) writes the same partial
  results and the drift monitor merges them when the job ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

ENGINE_LAMBDA = "lambda"
ENGINE_PARTIALS = "partials"
ENGINE_PROCESSING = "processing"
ENGINES = (ENGINE_LAMBDA, ENGINE_PARTIALS, ENGINE_PROCESSING)
"""``monitoring.drift.engine``: one pass in the Lambda; merged per-object partial results; a sharded job."""

PARTIALS_PREFIX = "drift-partials"
"""Key prefix of partial results in the report (artifact) bucket; below it, the captured object's own key."""
PARTIALS_FUNCTION = "drift_partials"
"""The per-object function's folder under ``lambdas/`` and its Powertools service name."""
PARTIALS_MEMORY_MB = 1769
"""Its memory: Lambda's one full vCPU (the parse is single-threaded); a 100 MB object takes ~1 s."""
PARTIALS_CONCURRENCY = 4
"""Its reserved concurrency: capture objects land in bursts at the turn of the hour (every instance flushes); a
throttled asynchronous event waits in Lambda's queue (retried for up to six hours), it is not lost."""

ENV_DRIFT_ENGINE = "DRIFT_ENGINE"
ENV_PARTIALS_PREFIX = "PARTIALS_PREFIX"
ENV_PROCESSING_MAX_INSTANCES = "PROCESSING_MAX_INSTANCES"
"""The drift monitor's variables for the engines of this issue (beside the ones it had)."""

METRIC_PARTIALS_MERGED = "PartialsMerged"
METRIC_OBJECTS_COUNTED_INLINE = "ObjectsCountedInline"
METRIC_OBJECTS_NOT_ANALYSED = "ObjectsNotAnalysed"
"""Per variant and window (namespace MLOps; Endpoint, Variant, service): objects whose partial result was merged;
objects the run counted itself (partial result missing, late, stale or invalid); objects left out (beyond the
run's inline budget). ``ObjectsNotAnalysed`` > 0 opens a ticket."""

PROCESSING_JOB_DONE_DETAIL_TYPE = "SageMaker Processing Job State Change"
"""EventBridge detail type of a Processing job's state change: a sharded drift job's end starts the merge."""
WINDOW_END_VARIABLE = "DRIFT_WINDOW_END"
WINDOW_HOURS_VARIABLE = "DRIFT_WINDOW_HOURS"
"""Set in the sharded job's Environment, so the event of its end says which window to merge."""


class PartialsEnvironmentError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True, kw_only=True)
class DriftPartialsEnvironment:
    """The per-object function's environment: written by the stack (``to_env``), read by the handler
    (``from_env``), so a key or a default cannot differ between the two."""

    endpoint_name: str
    capture_bucket: str
    capture_prefix: str
    prediction_log_prefix: str | None
    prediction_log_variant: str
    report_bucket: str
    partials_prefix: str
    variant_parameter_prefix: str

    KEYS: ClassVar[dict[str, str]] = {
        "endpoint_name": "ENDPOINT_NAME", "capture_bucket": "CAPTURE_BUCKET", "capture_prefix": "CAPTURE_PREFIX",
        "prediction_log_prefix": "PREDICTION_LOG_PREFIX", "prediction_log_variant": "PREDICTION_LOG_VARIANT",
        "report_bucket": "REPORT_BUCKET", "partials_prefix": ENV_PARTIALS_PREFIX,
        "variant_parameter_prefix": "VARIANT_PARAMETER_PREFIX"}
    S3_PREFIXES: ClassVar[frozenset[str]] = frozenset({"capture_prefix", "prediction_log_prefix", "partials_prefix"})
    OPTIONAL: ClassVar[dict[str, str | None]] = {"prediction_log_prefix": None, "prediction_log_variant": "Champion",
                "partials_prefix": PARTIALS_PREFIX, "capture_prefix": ""}

    def to_env(self) -> dict[str, str]:
        return {self.KEYS[item.name]: str(getattr(self, item.name)) for item in fields(self)
                if getattr(self, item.name) is not None}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DriftPartialsEnvironment:
        values: dict[str, Any] = {}
        for name, key in cls.KEYS.items():
            raw = env.get(key, "").strip().strip("/") if name in cls.S3_PREFIXES else env.get(key, "").strip()
            if raw:
                values[name] = raw
            elif name in cls.OPTIONAL:
                values[name] = cls.OPTIONAL[name]
            else:
                raise PartialsEnvironmentError(f"environment variable {key} is required and must not be empty")
        return cls(**values)
