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

import functools
import multiprocessing
import os
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from mlcore.drift.baseline import baseline_schema, load_baseline
from mlcore.drift.capture_blocks import BlockParser, ParsedBlock, line_blocks, recut
from mlcore.drift.ground_truth import JoinEntry, Occurrence, QualityJoin
from mlcore.drift.html_report import render_drift_html
from mlcore.drift.statistics import DriftAccumulator, DriftThresholds
from mlcore.drift.window import Window, iter_local_blocks, iter_local_lines

T = TypeVar("T")
RUN_FORMAT = "mlops-drift-run/1"
REPORT_FILE = "drift_report.json"
"""The run report's file name next to the variant pages (S3 report prefix, Processing job output)."""
DEFAULT_CHUNK_LINES = 20_000
"""Lines parsed at once from a source that yields lines (tests, in-memory sources); sources that yield raw
bytes are parsed in blocks of ``mlcore.drift.capture_blocks.BLOCK_BYTES``."""
MAX_WORKERS = 4
"""Parsing processes by default: one per CPU, at most this many (a Lambda function has at most 6 vCPUs and
gets two at 3,538 MB; more processes than CPUs only add memory)."""
DEGRADED_GROUP = "Degraded"
"""Quality group of answers the inference API served without the endpoint (fallback model, cache, default)."""

SourceKind = Literal["endpoint_capture", "prediction_log"]
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
"""What reading any file-like source may raise; a source adds its transport's errors (``read_errors``)."""


def default_workers() -> int:
    """Parsing processes of the drift Lambda (without ``DRIFT_WORKERS``), ``mlops drift`` and the Processing job:
    one per CPU, at most ``MAX_WORKERS``."""
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


@dataclass(frozen=True)
class LineSource:
    """One object (S3 key or file) of a window; ``open`` streams its lines, ``open_blocks`` (when given, and
    preferred) its raw bytes in reads of any size. ``read_errors``: what else than a file error reading it may
    raise (an S3 source's ``ClientError``, ``BotoCoreError``); such an object is reported unreadable, like a
    corrupt file, instead of failing the run. ``size``, ``etag`` and ``modified`` identify the object's content
    where the listing says (partial results are checked against them)."""

    name: str
    kind: SourceKind
    open: Callable[[], Iterable[bytes]]
    read_errors: tuple[type[BaseException], ...] = ()
    open_blocks: Callable[[], Iterable[bytes]] | None = None
    size: int | None = None
    etag: str | None = None
    modified: datetime | None = None


def local_source(path: Path, kind: SourceKind) -> LineSource:
    """A local capture file as a source (its size balances the work among processes)."""
    return LineSource(name=str(path), kind=kind, open=functools.partial(iter_local_lines, path),
                      open_blocks=functools.partial(iter_local_blocks, path), size=path.stat().st_size)


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
class SourceTally:
    """What a run says about its objects besides the statistics; ``unreadable`` keeps each object's position in
    the plan so that tallies merged from workers list them in plan order."""

    objects: int = 0
    unreadable: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    records: int = 0

    def merge(self, other: SourceTally) -> None:
        self.objects += other.objects
        self.unreadable += other.unreadable
        self.skipped.update(other.skipped)
        self.records += other.records

    def unreadable_objects(self) -> list[dict[str, str]]:
        return [item for _, item in sorted(self.unreadable, key=lambda pair: pair[0])]


class ObjectCounter:
    """Counts whole objects of one variant into one accumulator: the unit of a worker, of a per-object partial
    result (``mlcore.drift.partials``) and of the one-pass run alike, so all of them give the same report."""

    def __init__(self, baseline: Mapping[str, Any], thresholds: DriftThresholds | None = None, *,
                 chunk_lines: int = DEFAULT_CHUNK_LINES, fast: bool = True,
                 labelled: Callable[[str], bool] | None = None) -> None:
        self.accumulator = DriftAccumulator(baseline, thresholds)
        self.tally = SourceTally()
        self._settings = (baseline, thresholds, chunk_lines, fast, labelled)
        schema = baseline_schema(load_baseline(baseline))
        self._parsers = {"endpoint_capture": BlockParser(schema, fast=fast),
                         "prediction_log": BlockParser(schema, prediction_log=True, fast=fast)}
        self._chunk_lines = chunk_lines
        self._labelled = labelled

    def fresh(self) -> ObjectCounter:
        """An empty counter with the same baseline and settings."""
        baseline, thresholds, chunk_lines, fast, labelled = self._settings
        return ObjectCounter(baseline, thresholds, chunk_lines=chunk_lines, fast=fast, labelled=labelled)

    def add(self, source: LineSource, index: int = 0) -> list[JoinEntry]:
        """Count one object; returns the lines with a labelled id (when the counter was given ``labelled``)."""
        parser = self._parsers[source.kind]
        self.tally.objects += 1
        joins: list[JoinEntry] = []
        ordinal = 0
        try:
            for block in source_blocks(source, self._chunk_lines):
                parsed = parser.parse(block, labelled=self._labelled, first_line=ordinal)
                ordinal += parsed.lines
                self._add_parsed(parsed)
                joins.extend(parsed.joins)
        except (*_READ_ERRORS, *source.read_errors) as err:
            self.tally.unreadable.append(
                (index, {"object": source.name, "error": f"{type(err).__name__}: {err}"[:300]}))
        self.accumulator.end_object()
        return joins

    def _add_parsed(self, parsed: ParsedBlock) -> None:
        if parsed.rows:
            self.accumulator.add_counted(parsed.numeric, parsed.categories, parsed.rows)
        if parsed.confidences is not None:  # another kind's drift values and confidences (mlcore.outputs)
            self.accumulator.add_predictions(parsed.probabilities, parsed.confidences)
        elif parsed.probabilities.size:
            self.accumulator.add_probabilities(parsed.probabilities)
        for reason, count in parsed.malformed.items():
            self.accumulator.add_malformed(count, reason)
        self.tally.records += parsed.records
        self.tally.skipped.update(parsed.skipped)


def source_blocks(source: LineSource, chunk_lines: int = DEFAULT_CHUNK_LINES) -> Iterator[bytes | list[bytes]]:
    """An object as blocks for ``BlockParser``: raw bytes re-cut at line ends, or lists of lines."""
    if source.open_blocks is not None:
        return recut(source.open_blocks())
    return line_blocks(source.open(), chunk_lines)


def join_group(plan: VariantPlan, source: LineSource) -> str:
    """Whose quality a labelled prediction counts for: the variant's, or ``Degraded`` for the inference API's
    answers that no variant produced."""
    return plan.variant if source.kind == "endpoint_capture" else DEGRADED_GROUP


def analyse_variant(plan: VariantPlan, *, thresholds: DriftThresholds, chunk_lines: int = DEFAULT_CHUNK_LINES,
                    quality: QualityJoin | None = None, fast: bool = True, workers: int = 1,
                    plan_index: int = 0) -> dict[str, Any]:
    """The report entry of one variant (``status`` ``analysed`` or ``skipped``).

    With ``workers`` > 1 the capture objects are shared out among forked worker processes whose counts (and
    ground-truth join entries) are merged: parsing is CPU-bound, and a Lambda function with 3,538 MB or more has
    two vCPUs. Worker results come back over pipes (Lambda has no /dev/shm, so no Pool or Queue). Every object
    is counted whole by one process, so the report is the one-process report bit for bit."""
    entry, counter = variant_counter(plan, thresholds=thresholds, quality=quality, chunk_lines=chunk_lines,
                                     fast=fast)
    if counter is None:
        return entry
    occurrences = count_objects(counter, plan, plan_index=plan_index, workers=workers)
    if quality is not None:
        quality.add_occurrences(occurrences)
    return analysed_entry(entry, counter)


def variant_counter(plan: VariantPlan, *, thresholds: DriftThresholds, quality: QualityJoin | None,
                    chunk_lines: int, fast: bool) -> tuple[dict[str, Any], ObjectCounter | None]:
    """A variant's report entry so far, and the counter for its objects (None: the entry says why it is skipped)."""
    entry: dict[str, Any] = {"variant": plan.variant, "model_package_arn": plan.model_package_arn,
                             "baseline_uri": plan.baseline_uri, "objects": len(plan.sources)}
    if plan.baseline is None:
        entry.update(status="skipped", reason=plan.skip_reason or "no baseline")
        return entry, None
    try:
        return entry, ObjectCounter(plan.baseline, thresholds, chunk_lines=chunk_lines, fast=fast,
                                    labelled=quality.labelled if quality is not None else None)
    except ValueError as err:  # BaselineError is a ValueError
        entry.update(status="skipped", reason=f"baseline unusable: {err}")
        return entry, None


def analysed_entry(entry: dict[str, Any], counter: ObjectCounter) -> dict[str, Any]:
    report = counter.accumulator.report().to_dict()
    entry.update(
        status="analysed",
        records=counter.tally.records,
        empty_window=report["rows"] == 0 and report["malformed"] == 0,
        unreadable_objects=counter.tally.unreadable_objects(),
        skipped_records=dict(sorted(counter.tally.skipped.items())),
        drift=report,
    )
    return entry


def count_objects(counter: ObjectCounter, plan: VariantPlan, *, plan_index: int = 0, workers: int = 1,
                  indices: Sequence[int] | None = None) -> list[Occurrence]:
    """Count the plan's objects (or those at ``indices``) into ``counter``, in ``workers`` processes; returns
    the ground-truth occurrences at positions (plan, object, line)."""
    chosen = list(range(len(plan.sources))) if indices is None else list(indices)
    shares = share_out(chosen, [plan.sources[i].size for i in chosen], min(workers, len(chosen)))
    if len(shares) <= 1:
        return _count_share(counter, plan, plan_index, chosen)
    occurrences: list[Occurrence] = []
    for state, tally, found in _fan_out(counter, plan, plan_index, shares):
        counter.accumulator.add_state(state)
        counter.tally.merge(tally)
        occurrences.extend(found)
    return occurrences


def _count_share(counter: ObjectCounter, plan: VariantPlan, plan_index: int,
                 indices: Sequence[int]) -> list[Occurrence]:
    occurrences: list[Occurrence] = []
    for index in indices:
        source = plan.sources[index]
        group = join_group(plan, source)
        occurrences += [((plan_index, index, entry[0]), group, tuple(entry))  # type: ignore[misc]
                        for entry in counter.add(source, index)]
    return occurrences


def share_out(indices: Sequence[int], sizes: Sequence[int | None], groups: int) -> list[list[int]]:
    """Objects shared out among ``groups`` processes: by size, largest first, to the least loaded (when every
    size is known), else round robin. Each share keeps plan order."""
    if groups <= 1:
        return [list(indices)]
    if all(size is not None for size in sizes):
        loads = [0] * groups
        shares: list[list[int]] = [[] for _ in range(groups)]
        for size, index in sorted(zip(sizes, indices, strict=True), key=lambda pair: (-(pair[0] or 0), pair[1])):
            target = loads.index(min(loads))
            shares[target].append(index)
            loads[target] += size or 0
        return [sorted(share) for share in shares if share]
    return [list(indices[start::groups]) for start in range(groups)]


def _fan_out(counter: ObjectCounter, plan: VariantPlan, plan_index: int,
             shares: list[list[int]]) -> list[tuple[dict[str, Any], SourceTally, list[Occurrence]]]:
    def task(share: list[int]) -> tuple[dict[str, Any], SourceTally, list[Occurrence]]:
        own = counter.fresh()  # the child counts its share alone; the parent adds it to what it has
        occurrences = _count_share(own, plan, plan_index, share)
        return own.accumulator.state(), own.tally, occurrences

    return forked(task, shares)


def forked(task: Callable[[list[int]], T], shares: list[list[int]]) -> list[T]:
    """``task(share)`` for each share in its own forked process, results back over pipes, in share order: a
    Lambda function has no /dev/shm, so no ``multiprocessing.Pool`` or ``Queue``."""
    context = multiprocessing.get_context("fork")
    running = []
    for share in shares:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_run_task, args=(send, task, share), daemon=True)
        process.start()
        send.close()
        running.append((process, receive))
    results = []
    for process, receive in running:
        outcome = receive.recv()
        process.join()
        if isinstance(outcome, BaseException):
            raise RuntimeError(f"drift worker failed: {outcome!r}") from outcome
        results.append(outcome)
    return results


def _run_task(send: Any, task: Callable[[list[int]], Any], share: list[int]) -> None:
    try:
        send.send(task(share))
    except BaseException as err:
        send.send(err)
    finally:
        send.close()


def join_ground_truth(plans: Sequence[VariantPlan], quality: QualityJoin, *, workers: int = 1,
                      chunk_lines: int = DEFAULT_CHUNK_LINES, fast: bool = True,
                      known: Mapping[str, Sequence[JoinEntry]] | None = None) -> list[dict[str, str]]:
    """A separate pass for labels that arrive late: the join only, over an earlier window's objects (only lines
    with a labelled id are parsed exactly), in ``workers`` processes. ``known``: the entries of objects already
    joined elsewhere (a sharded job's instances), by object name; those are not read. Returns unreadable
    objects."""
    unreadable: list[dict[str, str]] = []
    known = known or {}
    for plan_index, plan in enumerate(plans):
        if plan.baseline is None:
            continue
        try:
            counter = ObjectCounter(plan.baseline, chunk_lines=chunk_lines, fast=fast, labelled=quality.labelled)
        except ValueError:
            continue
        read = []
        for index, source in enumerate(plan.sources):
            if source.name in known:
                group = join_group(plan, source)
                quality.add_occurrences(((plan_index, index, e.line), group, e) for e in known[source.name])
            else:
                read.append(index)
        quality.add_occurrences(count_objects(counter, plan, plan_index=plan_index, workers=workers, indices=read))
        unreadable += counter.tally.unreadable_objects()
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
    for plan_index, plan in enumerate(plans):
        variants[plan.variant] = analyse_variant(plan, thresholds=thresholds, chunk_lines=chunk_lines,
                                                 quality=same_pass, fast=fast, workers=workers,
                                                 plan_index=plan_index)
    quality_unreadable: list[dict[str, str]] = []
    if quality is not None and quality_plans is not None:
        quality_unreadable = join_ground_truth(quality_plans, quality, workers=workers, chunk_lines=chunk_lines,
                                               fast=fast)
    return assemble_run_report(variants, plans, endpoint=endpoint, window=window, thresholds=thresholds,
                               quality=quality, quality_settings=quality_settings, labels_summary=labels_summary,
                               quality_unreadable=quality_unreadable, now=now)


def assemble_run_report(variants: Mapping[str, dict[str, Any]], plans: Sequence[VariantPlan], *, endpoint: str,
                        window: Window | None, thresholds: DriftThresholds, quality: QualityJoin | None = None,
                        quality_settings: QualitySettings | None = None,
                        labels_summary: Mapping[str, Any] | None = None,
                        quality_unreadable: Sequence[dict[str, str]] = (),
                        now: datetime | None = None) -> dict[str, Any]:
    """The run report from the variants' entries (however they were computed: one pass, workers, partials)."""
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
        if DEGRADED_GROUP in quality.groups():
            # Degraded answers are not any variant's model: reported for reading, never compared.
            groups[DEGRADED_GROUP] = quality.report(DEGRADED_GROUP, registered=None, metric=settings.metric,
                                                    margin=settings.margin, min_rows=settings.min_rows)
        quality_doc = {"labels": dict(labels_summary or {}), "unmatched_labels": quality.unmatched_labels,
                       "join_problems": dict(sorted(quality.problems.items())),
                       "unreadable_objects": list(quality_unreadable), "variants": groups}
    analysed = {name: item for name, item in variants.items() if item["status"] == "analysed"}
    return {
        "format": RUN_FORMAT,
        "endpoint": endpoint,
        "window": window.to_dict() if window else None,
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "thresholds": thresholds.to_dict(),
        "variants": dict(variants),
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
