"""Drift at any traffic: the names the per-object partial-results function, the drift monitor, the sharded
Processing job and their stack share (issue 28). Standard library only.

* Each captured object (endpoint data capture, the inference API's prediction log) is reduced, when it lands, to
  a partial result at ``<PARTIALS_PREFIX>/<the object's key>.partial.json`` in the report bucket, by the function
  ``lambdas/drift_partials`` (S3 "Object Created" events through EventBridge).
* With ``monitoring.drift.engine: partials`` the scheduled drift run merges them (``mlcore.drift.partials``);
  with ``processing`` a Processing job over several instances (``ShardedByS3Key``) writes the same partial
  results and the drift monitor merges them when the job ends.
"""

from __future__ import annotations

ENGINE_LAMBDA = "lambda"
ENGINE_PARTIALS = "partials"
ENGINE_PROCESSING = "processing"
ENGINES = (ENGINE_LAMBDA, ENGINE_PARTIALS, ENGINE_PROCESSING)
"""``monitoring.drift.engine``: one pass in the Lambda; merged per-object partial results; a sharded job."""

PARTIALS_PREFIX = "drift-partials"
"""Key prefix of partial results in the report (artifact) bucket; below it, the captured object's own key."""
PARTIALS_MEMORY_MB = 1769
"""Its memory: Lambda's one full vCPU (the parse is single-threaded); a 100 MB object takes ~1 s."""
PARTIALS_CONCURRENCY = 4
"""Its reserved concurrency: capture objects land in bursts at the turn of the hour (every instance flushes); a
throttled asynchronous event waits in Lambda's queue (retried for up to six hours), it is not lost."""

PROCESSING_JOB_DONE_DETAIL_TYPE = "SageMaker Processing Job State Change"
"""EventBridge detail type of a Processing job's state change: a sharded drift job's end starts the merge."""
WINDOW_END_VARIABLE = "DRIFT_WINDOW_END"
WINDOW_HOURS_VARIABLE = "DRIFT_WINDOW_HOURS"
"""Set in the sharded job's Environment, so the event of its end says which window to merge."""
