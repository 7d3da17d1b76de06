"""One drift run: for every variant, stream its window through the baseline's accumulator, join ground truth,
and produce the run report (JSON) and one HTML page per variant.

The same functions run in the drift Lambda (S3 sources), in ``mlops drift`` (a folder or an S3 prefix)
and in the SageMaker Processing entry point (``pipelines.processing.drift_entry``): only the line sources
differ. Nothing here talks to AWS: a source's ``open`` streams its lines, and the errors a source may raise
besides the file errors are the source's own ``read_errors`` (an S3 source names botocore's), so this module
needs no AWS SDK. Metrics are published by ``mlplatform.monitoring.drift_metrics`` from the finished
report, so a report computed elsewhere can be published the same way.

Never a crash for bad data: malformed lines are counted per reason by the accumulator, an unreadable
object is listed in the report, and a variant without a usable baseline is reported as skipped.
"""

from __future__ import annotations

import multiprocessing
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mlcore.drift.baseline import baseline_schema, load_baseline
from mlcore.drift.capture_chunks import CaptureChunkParser
from mlcore.drift.ground_truth import QualityJoin
from mlcore.drift.html_report import render_drift_html
from mlcore.drift.statistics import DriftAccumulator, DriftThresholds
from mlcore.drift.window import Window

RUN_FORMAT = "mlops-drift-run/1"
REPORT_FILE = "drift_report.json"
"""The run report's file name next to the variant pages (S3 report prefix, Processing job output)."""
DEFAULT_CHUNK_LINES = 20_000
"""Lines parsed per chunk: ~10 MB of raw lines plus their columns, far below the Lambda's memory, and
large enough that numpy's per-call overhead is negligible."""

SourceKind = Literal["endpoint_capture", "prediction_log"]
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
"""What reading any file-like source may raise; a source adds its transport's errors (``read_errors``)."""


@dataclass(frozen=True)
class LineSource:
    """One object (S3 key or file) of a window; ``open`` streams its lines. ``read_errors``: what else than a
    file error reading it may raise (an S3 source's ``ClientError``, ``BotoCoreError``); such an object is
    reported unreadable, like a corrupt file, instead of failing the run."""

    name: str
    kind: SourceKind
    open: Callable[[], Iterable[bytes]]
    read_errors: tuple[type[BaseException], ...] = ()


@dataclass
class VariantPlan:
    """What one variant's analysis needs; ``baseline is None`` means skipped for ``skip_reason``."""

    variant: str
    sources: list[LineSource]
    baseline: Mapping[str, Any] | None = None
    skip_reason: str | None = None
    model_package_arn: str | None = None
    baseline_uri: str | None = None
    registered_quality: Mapping[str, float] | None = None
    quality_problem: str | None = None


@dataclass(frozen=True, kw_only=True)
class QualitySettings:
    metric: str = "auc"
    margin: float = 0.05
    min_rows: int = 50


@dataclass
class _SourceTally:
    objects: int = 0
    unreadable: list[dict[str, str]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    records: int = 0

    def merge(self, other: _SourceTally) -> None:
        self.objects += other.objects
        self.unreadable += other.unreadable
        self.skipped.update(other.skipped)
        self.records += other.records


def analyse_variant(plan: VariantPlan, *, thresholds: DriftThresholds, chunk_lines: int = DEFAULT_CHUNK_LINES,
                    quality: QualityJoin | None = None, fast: bool = True, workers: int = 1) -> dict[str, Any]:
    """The report entry of one variant (``status`` ``analysed`` or ``skipped``).

    With ``workers`` > 1 (and no ground-truth join) the capture objects are shared out among forked worker
    processes whose accumulators are merged: parsing is CPU-bound, and a Lambda function with 3,538 MB or
    more has two vCPUs. Worker results come back over pipes (Lambda has no /dev/shm, so no Pool or Queue)."""
    entry: dict[str, Any] = {
        "variant": plan.variant,
        "model_package_arn": plan.model_package_arn,
        "baseline_uri": plan.baseline_uri,
        "objects": len(plan.sources),
    }
    if plan.baseline is None:
        entry.update(status="skipped", reason=plan.skip_reason or "no baseline")
        return entry
    try:
        baseline = load_baseline(plan.baseline)
        accumulator = DriftAccumulator(baseline, thresholds)
    except ValueError as err:  # BaselineError is a ValueError
        entry.update(status="skipped", reason=f"baseline unusable: {err}")
        return entry
    tally = _SourceTally()
    groups = min(workers, len(plan.sources)) if quality is None else 1
    if groups > 1:
        for part_accumulator, part_tally in _fan_out(plan, baseline, thresholds, chunk_lines, fast, groups):
            accumulator.merge(part_accumulator)
            tally.merge(part_tally)
    else:
        _analyse_sources(plan.sources, plan.variant, baseline, accumulator, tally, chunk_lines=chunk_lines,
                         quality=quality, fast=fast)
    report = accumulator.report().to_dict()
    entry.update(
        status="analysed",
        records=tally.records,
        empty_window=report["rows"] == 0 and report["malformed"] == 0,
        unreadable_objects=tally.unreadable,
        skipped_records=dict(sorted(tally.skipped.items())),
        drift=report,
    )
    return entry


def _analyse_sources(sources: Sequence[Any], variant: str, baseline: Mapping[str, Any],
                     accumulator: DriftAccumulator, tally: _SourceTally, *, chunk_lines: int,
                     quality: QualityJoin | None, fast: bool) -> None:
    schema = baseline_schema(baseline)
    parsers = {"endpoint_capture": CaptureChunkParser(schema, fast=fast),
               "prediction_log": CaptureChunkParser(schema, prediction_log=True, fast=fast)}
    for source in sources:
        parser = parsers[source.kind]
        tally.objects += 1
        buffer: list[bytes] = []
        try:
            for line in source.open():
                if not line:
                    continue  # an empty line separates nothing from nothing: not a record
                buffer.append(line)
                if quality is not None and source.kind == "endpoint_capture":
                    quality.add_line(variant, line, parser.parse_record)
                elif quality is not None:
                    quality.add_line(_DEGRADED_GROUP, line, parser.parse_record)
                if len(buffer) >= chunk_lines:
                    _add_chunk(accumulator, parser, buffer, tally)
                    buffer = []
        except (*_READ_ERRORS, *source.read_errors) as err:
            tally.unreadable.append({"object": source.name, "error": f"{type(err).__name__}: {err}"[:300]})
        if buffer:
            _add_chunk(accumulator, parser, buffer, tally)


def _fan_out(plan: VariantPlan, baseline: Mapping[str, Any], thresholds: DriftThresholds, chunk_lines: int,
             fast: bool, groups: int) -> list[tuple[DriftAccumulator, _SourceTally]]:
    context = multiprocessing.get_context("fork")
    shares = [list(plan.sources[index::groups]) for index in range(groups)]
    workers = []
    for share in shares:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(send, share, plan.variant, baseline, thresholds,
                                                        chunk_lines, fast), daemon=True)
        process.start()
        send.close()
        workers.append((process, receive))
    results = []
    for process, receive in workers:
        outcome = receive.recv()
        process.join()
        if isinstance(outcome, BaseException):
            raise RuntimeError(f"drift worker failed: {outcome!r}") from outcome
        results.append(outcome)
    return results


def _worker(send: Any, sources: list[Any], variant: str, baseline: Mapping[str, Any],
            thresholds: DriftThresholds, chunk_lines: int, fast: bool) -> None:
    try:
        accumulator, tally = DriftAccumulator(baseline, thresholds), _SourceTally()
        _analyse_sources(sources, variant, baseline, accumulator, tally, chunk_lines=chunk_lines, quality=None,
                         fast=fast)
        send.send((accumulator, tally))
    except BaseException as err:
        send.send(err)
    finally:
        send.close()


_DEGRADED_GROUP = "Degraded"
"""Quality group of answers the inference API served without the endpoint (fallback model, cache, default)."""


def _add_chunk(accumulator: DriftAccumulator, parser: CaptureChunkParser, lines: Sequence[bytes],
               tally: _SourceTally) -> None:
    chunk = parser.parse(lines)
    if chunk.rows:
        accumulator.add_columns(chunk.columns)
    if chunk.probabilities.size:
        accumulator.add_probabilities(chunk.probabilities)
    for reason, count in chunk.malformed.items():
        accumulator.add_malformed(count, reason)
    tally.records += chunk.records
    tally.skipped.update(chunk.skipped)


def join_ground_truth(plans: Sequence[VariantPlan], quality: QualityJoin) -> list[dict[str, str]]:
    """A separate pass for labels that arrive late: streams an earlier window's sources through the join
    only (a regex pre-filter per line; only labelled lines are parsed). Returns unreadable objects."""
    unreadable: list[dict[str, str]] = []
    for plan in plans:
        if plan.baseline is None:
            continue
        try:
            parser = CaptureChunkParser(baseline_schema(load_baseline(plan.baseline)))
        except ValueError:
            continue
        for source in plan.sources:
            group = plan.variant if source.kind == "endpoint_capture" else _DEGRADED_GROUP
            try:
                for line in source.open():
                    if line:
                        quality.add_line(group, line, parser.parse_record)
            except (*_READ_ERRORS, *source.read_errors) as err:
                unreadable.append({"object": source.name, "error": f"{type(err).__name__}: {err}"[:300]})
    return unreadable


def run_drift(plans: Sequence[VariantPlan], *, endpoint: str, window: Window | None,
              thresholds: DriftThresholds, quality: QualityJoin | None = None,
              quality_plans: Sequence[VariantPlan] | None = None,
              quality_settings: QualitySettings | None = None, labels_summary: Mapping[str, Any] | None = None,
              chunk_lines: int = DEFAULT_CHUNK_LINES, fast: bool = True,
              now: datetime | None = None, workers: int = 1) -> dict[str, Any]:
    """Analyse every variant and assemble the run report (format ``mlops-drift-run/1``).

    With ``quality`` the labels are joined to the predictions of this window in the same pass, or, when
    ``quality_plans`` is given (labels arrive with a delay), to the predictions of those plans' sources.
    """
    variants: dict[str, dict[str, Any]] = {}
    same_pass = quality if quality_plans is None else None
    for plan in plans:
        variants[plan.variant] = analyse_variant(plan, thresholds=thresholds, chunk_lines=chunk_lines,
                                                 quality=same_pass, fast=fast, workers=workers)
    quality_unreadable: list[dict[str, str]] = []
    if quality is not None and quality_plans is not None:
        quality_unreadable = join_ground_truth(quality_plans, quality)
    quality_doc: dict[str, Any] | None = None
    if quality is not None:
        settings = quality_settings or QualitySettings()
        groups: dict[str, Any] = {}
        for plan in plans:
            item = quality.report(plan.variant, registered=plan.registered_quality, metric=settings.metric,
                                  margin=settings.margin, min_rows=settings.min_rows)
            if plan.quality_problem:
                item["registered_problem"] = plan.quality_problem
            groups[plan.variant] = item
        if _DEGRADED_GROUP in quality.groups():
            # Degraded answers are not any variant's model: reported for reading, never compared.
            groups[_DEGRADED_GROUP] = quality.report(_DEGRADED_GROUP, registered=None, metric=settings.metric,
                                                     margin=settings.margin, min_rows=settings.min_rows)
        quality_doc = {"labels": dict(labels_summary or {}), "unmatched_labels": quality.unmatched_labels,
                       "join_problems": dict(sorted(quality.problems.items())),
                       "unreadable_objects": quality_unreadable, "variants": groups}
    analysed = {name: item for name, item in variants.items() if item["status"] == "analysed"}
    return {
        "format": RUN_FORMAT,
        "endpoint": endpoint,
        "window": window.to_dict() if window else None,
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "thresholds": thresholds.to_dict(),
        "variants": variants,
        "drifted_variants": sorted(name for name, item in analysed.items() if item["drift"]["drifted"]),
        "skipped_variants": {name: item["reason"] for name, item in variants.items()
                             if item["status"] == "skipped"},
        "quality": quality_doc,
    }


def render_variant_pages(run_report: Mapping[str, Any], plans: Sequence[VariantPlan]) -> dict[str, str]:
    """``{variant: html}`` for every analysed variant."""
    baselines = {plan.variant: plan.baseline for plan in plans if plan.baseline is not None}
    window = run_report.get("window") or {}
    pages: dict[str, str] = {}
    for name, item in run_report["variants"].items():
        if item["status"] != "analysed" or name not in baselines:
            continue
        span = f" {window.get('start')} to {window.get('end')}" if window else ""
        pages[name] = render_drift_html(item["drift"], baselines[name],
                                        title=f"Drift of {run_report['endpoint']} / {name}{span}")
    return pages


def report_prefix(base: str, endpoint: str, window: Window) -> str:
    """``<base>/<endpoint>/yyyy/mm/dd/hh/``: one folder per window end, so reruns overwrite, not pile up."""
    lead = base.strip("/")
    return f"{lead + '/' if lead else ''}{endpoint}/{window.end:%Y/%m/%d/%H}/"
