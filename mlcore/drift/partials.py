"""Partial results: one captured object reduced to what its share of a drift report needs, and the exact merge of
a window's partial results into the report the one-pass run gives (pure; no AWS).

A partial result (format ``mlops-drift-partial/1``) holds the drift accumulator's state for one object — counts
on the baseline's bins, category counts, missing / out-of-range / unseen counts (data quality), malformed-line
counts and the object's canonical sums (``mlcore.drift.exact_sum``) — plus what identifies the object's content
(size, ETag), the baseline it was counted against (a SHA-256 of its canonical JSON) and, when labels were at hand
(a backfill), the object's ground-truth join entries. A few kilobytes, whatever the object's size.

Merging is exact: every statistic of the report is computed from counts and exact sums, both of which add
associatively, and every object is counted whole in one place, so merging the partial results of a window in any
order and any grouping gives the one-pass report bit for bit (``tests/unit/test_partials_merge.py``, a property
test). The window run checks each object of its listing against its partial result:

* **merged**: a partial result for this object's content and this baseline;
* **missing**: none was written (the per-object function failed, or was not deployed then), or **late**: none yet
  and the object landed less than ``late_after`` before the run (the function has not caught up). Both are
  counted inline from the object, so the report stays complete, and named in the report;
* **stale**: written for other content (the object was replaced) or another baseline (a new model was deployed
  to the variant since): counted inline too;
* **invalid**: unreadable or not this format: counted inline;
* **duplicates**: several partial results for one object: one is used (the same content gives the same
  result), the others are counted; **orphaned**: partial results of objects not in the listing are ignored;
* **not analysed**: objects beyond the inline budget (``inline_limit_bytes``), listed by name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mlcore.drift.exact_sum import BLOCK_VALUES
from mlcore.drift.ground_truth import JoinEntry, Occurrence, QualityJoin
from mlcore.drift.run import (
    DEFAULT_CHUNK_LINES,
    LineSource,
    ObjectCounter,
    VariantPlan,
    analysed_entry,
    count_objects,
    forked,
    join_group,
    share_out,
    variant_counter,
)
from mlcore.drift.statistics import DriftInputError, DriftThresholds

T = TypeVar("T")
PARTIAL_FORMAT = "mlops-drift-partial/1"
PARTIAL_SUFFIX = ".partial.json"
"""A partial result's name: its object's key (or path) followed by this."""
DEFAULT_LATE_AFTER = timedelta(minutes=15)
"""An object without a partial result that landed this recently counts as late, not missing: the per-object
function (asynchronous, retried) may still be at it."""
EXAMPLES = 10
"""Object names listed per outcome in a report (the counts are complete)."""
OUTCOMES = ("merged", "missing", "late", "stale", "invalid", "not_analysed")


class PartialError(ValueError):
    """A partial-result document that cannot be used; the message names what is wrong."""


def baseline_fingerprint(baseline: Mapping[str, Any]) -> str:
    """SHA-256 of the baseline's canonical JSON: partial results counted on other bins never merge."""
    text = json.dumps(baseline, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def labels_fingerprint(labels: Mapping[str, Mapping[Any, float]]) -> str:
    """SHA-256 of a label set (``LabelSet.labels``): join entries made for other labels are not reused."""
    items = sorted((key, sorted((-1 if row is None else row, label) for row, label in rows.items()))
                   for key, rows in labels.items())
    return hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()


def object_partial(source: LineSource, *, variant: str, baseline: Mapping[str, Any],
                   chunk_lines: int = DEFAULT_CHUNK_LINES, fast: bool = True, quality: QualityJoin | None = None,
                   labels: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The partial result of one object (read whole). With ``quality`` (and its ``labels`` fingerprint) the
    object's ground-truth join entries are kept too."""
    counter = ObjectCounter(baseline, chunk_lines=chunk_lines, fast=fast,
                            labelled=quality.labelled if quality is not None else None)
    entries = counter.add(source)
    unreadable = counter.tally.unreadable_objects()
    return {
        "format": PARTIAL_FORMAT,
        "object": {"name": source.name, "kind": source.kind, "size": source.size, "etag": source.etag},
        "variant": variant,
        "baseline": baseline_fingerprint(baseline),
        "block_values": BLOCK_VALUES,
        "records": counter.tally.records,
        "skipped": dict(sorted(counter.tally.skipped.items())),
        "unreadable": unreadable[0]["error"] if unreadable else None,
        "state": counter.accumulator.state(),
        "joins": None if quality is None else {"labels": labels, "entries": [e.to_list() for e in entries]},
        "created": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class Partial:
    """A checked partial-result document."""

    name: str
    kind: str
    size: int | None
    etag: str | None
    variant: str
    baseline: str
    records: int
    skipped: Mapping[str, int]
    unreadable: str | None
    state: Mapping[str, Any]
    joins: tuple[str | None, tuple[JoinEntry, ...]] | None
    document: Mapping[str, Any] = field(repr=False)

    def fits(self, source: LineSource, *, variant: str, baseline: str) -> bool:
        """Counted from this object's current content, for this variant, on this baseline's bins."""
        return (self.name == source.name and self.kind == source.kind and self.variant == variant
                and self.baseline == baseline
                and (self.size is None or source.size is None or self.size == source.size)
                and (self.etag is None or source.etag is None or self.etag == source.etag))


def load_partial(doc: Any) -> Partial:
    """A partial-result document, checked (``PartialError`` names the key); the state is checked when merged."""
    if not isinstance(doc, Mapping):
        raise PartialError("a partial result must be a JSON object")
    if doc.get("format") != PARTIAL_FORMAT:
        raise PartialError(f"format is {doc.get('format')!r}; expected {PARTIAL_FORMAT!r}")
    if doc.get("block_values") != BLOCK_VALUES:
        raise PartialError(f"block_values is {doc.get('block_values')!r}; this release sums blocks of {BLOCK_VALUES}")
    identity = doc.get("object")
    if not isinstance(identity, Mapping) or not isinstance(identity.get("name"), str) \
            or identity.get("kind") not in ("endpoint_capture", "prediction_log"):
        raise PartialError("object must name the object and its kind")
    size, etag = identity.get("size"), identity.get("etag")
    if (size is not None and (not isinstance(size, int) or isinstance(size, bool))) or \
            (etag is not None and not isinstance(etag, str)):
        raise PartialError("object.size must be an integer and object.etag a string (or null)")
    for key in ("variant", "baseline"):
        if not isinstance(doc.get(key), str):
            raise PartialError(f"{key} must be a string")
    records, skipped, unreadable = doc.get("records"), doc.get("skipped"), doc.get("unreadable")
    if not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise PartialError("records must be a count")
    if not isinstance(skipped, Mapping) or any(not isinstance(v, int) for v in skipped.values()):
        raise PartialError("skipped must be an object of counts")
    if unreadable is not None and not isinstance(unreadable, str):
        raise PartialError("unreadable must be an error message or null")
    if not isinstance(doc.get("state"), Mapping):
        raise PartialError("state must be an object")
    joins: tuple[str | None, tuple[JoinEntry, ...]] | None = None
    if doc.get("joins") is not None:
        raw = doc["joins"]
        try:
            joins = (raw["labels"], tuple(JoinEntry.from_list(item) for item in raw["entries"]))
        except (KeyError, TypeError, ValueError) as err:
            raise PartialError(f"joins: {err}") from None
    return Partial(name=identity["name"], kind=identity["kind"], size=size, etag=etag, variant=doc["variant"],
                   baseline=doc["baseline"], records=records, skipped=dict(skipped), unreadable=unreadable,
                   state=doc["state"], joins=joins, document=doc)


@dataclass
class MergeBook:
    """What happened to each object of a window: the ``partials`` section of a variant's report entry."""

    outcomes: dict[str, list[str]] = field(default_factory=lambda: {outcome: [] for outcome in OUTCOMES})
    duplicates: int = 0
    orphaned: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "objects": sum(len(names) for names in self.outcomes.values()),
            **{outcome: len(names) for outcome, names in self.outcomes.items()},
            "duplicates": self.duplicates,
            "orphaned": len(self.orphaned),
            "examples": {outcome: names[:EXAMPLES] for outcome, names in
                         [*self.outcomes.items(), ("orphaned", self.orphaned)] if names and outcome != "merged"},
        }


def merge_variant(plan: VariantPlan, partials: Iterable[Any], *, thresholds: DriftThresholds,
                  quality: QualityJoin | None = None, labels: str | None = None, plan_index: int = 0,
                  now: datetime | None = None, late_after: timedelta = DEFAULT_LATE_AFTER,
                  inline_limit_bytes: int | None = None, chunk_lines: int = DEFAULT_CHUNK_LINES,
                  fast: bool = True, workers: int = 1,
                  joins: Mapping[str, Sequence[JoinEntry]] | None = None) -> dict[str, Any]:
    """One variant's report entry from the partial results of its window's objects (documents, any order),
    counting inline what they lack (see the module docstring); the same entry ``analyse_variant`` gives, plus a
    ``partials`` section. With ``quality`` the ground-truth join entries are taken from ``joins`` (by object
    name, found by a sharded job's instances) or from partial results made for the same ``labels``, and read from
    the objects for the others."""
    entry, counter = variant_counter(plan, thresholds=thresholds, quality=quality, chunk_lines=chunk_lines,
                                     fast=fast)
    if counter is None or plan.baseline is None:
        return entry
    book = MergeBook()
    fingerprint = baseline_fingerprint(plan.baseline)
    found, invalid = _by_object(partials)
    listed = {source.name for source in plan.sources}
    book.orphaned = sorted(name for name in found if name not in listed)
    moment = now or datetime.now(UTC)
    inline: list[int] = []
    joins_from_objects: list[int] = []
    budget = inline_limit_bytes
    occurrences: list[Occurrence] = []
    for index, source in enumerate(plan.sources):
        candidates = found.get(source.name, [])
        book.duplicates += max(0, len(candidates) - 1)
        usable = [p for p in candidates if p.fits(source, variant=plan.variant, baseline=fingerprint)]
        if usable:
            chosen = min(usable, key=lambda p: json.dumps(p.document, sort_keys=True))
            try:
                _add_partial(counter, chosen, index)
            except DriftInputError:  # a state that does not fit the baseline's bins: count the object instead
                invalid.add(source.name)
            else:
                book.outcomes["merged"].append(source.name)
                if quality is not None:
                    group = join_group(plan, source)
                    if joins is not None and source.name in joins:
                        occurrences += [((plan_index, index, e.line), group, e) for e in joins[source.name]]
                    elif chosen.joins is not None and chosen.joins[0] == labels:
                        occurrences += [((plan_index, index, e.line), group, e) for e in chosen.joins[1]]
                    else:
                        joins_from_objects.append(index)
                continue
        outcome = _outcome(source, candidates, invalid, moment, late_after)
        if budget is not None and (source.size or 0) > budget:
            book.outcomes["not_analysed"].append(source.name)
            continue
        if budget is not None:
            budget -= source.size or 0
        book.outcomes[outcome].append(source.name)
        inline.append(index)
    occurrences += count_objects(counter, plan, plan_index=plan_index, workers=workers, indices=inline)
    if joins_from_objects and quality is not None:
        join_counter = counter.fresh()
        occurrences += count_objects(join_counter, plan, plan_index=plan_index, workers=workers,
                                     indices=joins_from_objects)
    if quality is not None:
        quality.add_occurrences(occurrences)
    result = analysed_entry(entry, counter)
    result["partials"] = book.to_dict()
    return result


def _by_object(partials: Iterable[Any]) -> tuple[dict[str, list[Partial]], set[str]]:
    found: dict[str, list[Partial]] = {}
    invalid: set[str] = set()
    for doc in partials:
        try:
            partial = load_partial(doc)
        except PartialError:
            name = (doc.get("object") or {}).get("name") if isinstance(doc, Mapping) else None
            if isinstance(name, str):
                invalid.add(name)
            continue
        found.setdefault(partial.name, []).append(partial)
    return found, invalid


def _outcome(source: LineSource, candidates: Sequence[Partial], invalid: set[str], now: datetime,
             late_after: timedelta) -> str:
    if source.name in invalid:
        return "invalid"
    if candidates:
        return "stale"
    if source.modified is not None and now - source.modified < late_after:
        return "late"
    return "missing"


def _add_partial(counter: ObjectCounter, partial: Partial, index: int) -> None:
    counter.accumulator.add_state(partial.state)  # raises DriftInputError before changing anything
    tally = counter.tally
    tally.objects += 1
    tally.records += partial.records
    tally.skipped.update(partial.skipped)
    if partial.unreadable is not None:
        tally.unreadable.append((index, {"object": partial.name, "error": partial.unreadable}))


# ------------------------------------------------------------------------------------------ sharded jobs
SHARD_FORMAT = "mlops-drift-shard/1"
"""What one instance of a sharded Processing job reports besides its partial results: the objects it reduced and
the ground-truth join entries it found, by object name (the Lambda that merges the window reads them)."""


def reduce_objects(sources: Sequence[LineSource], *, variant: str, baseline: Mapping[str, Any],
                   write: Callable[[LineSource, dict[str, Any]], None], workers: int = 1,
                   quality: QualityJoin | None = None, labels: str | None = None,
                   chunk_lines: int = DEFAULT_CHUNK_LINES, now: datetime | None = None) -> dict[str, list[JoinEntry]]:
    """Each object's partial result, handed to ``write`` (in the process that made it), in ``workers`` forked
    processes; returns the ground-truth join entries by object name (with ``quality``)."""
    def task(share: list[int]) -> dict[str, list[JoinEntry]]:
        found: dict[str, list[JoinEntry]] = {}
        for index in share:
            document = object_partial(sources[index], variant=variant, baseline=baseline, chunk_lines=chunk_lines,
                                      quality=quality, labels=labels, now=now)
            write(sources[index], document)
            if quality is not None:
                found[sources[index].name] = [JoinEntry.from_list(e) for e in document["joins"]["entries"]]
        return found

    return _merged(in_processes(task, list(range(len(sources))), [s.size for s in sources], workers))


def join_objects(sources: Sequence[LineSource], *, baseline: Mapping[str, Any], quality: QualityJoin,
                 workers: int = 1, chunk_lines: int = DEFAULT_CHUNK_LINES) -> tuple[dict[str, list[JoinEntry]],
                                                                                    list[dict[str, str]]]:
    """The ground-truth join entries of objects (the delayed predictions window), by object name, and the
    objects that could not be read."""
    def task(share: list[int]) -> tuple[dict[str, list[JoinEntry]], list[dict[str, str]]]:
        counter = ObjectCounter(baseline, chunk_lines=chunk_lines, labelled=quality.labelled)
        found = {sources[index].name: counter.add(sources[index], index) for index in share}
        return found, counter.tally.unreadable_objects()

    joined: dict[str, list[JoinEntry]] = {}
    unreadable: list[dict[str, str]] = []
    for found, lost in in_processes(task, list(range(len(sources))), [s.size for s in sources], workers):
        joined.update(found)
        unreadable += lost
    return joined, unreadable


def _merged(parts: Sequence[dict[str, list[JoinEntry]]]) -> dict[str, list[JoinEntry]]:
    merged: dict[str, list[JoinEntry]] = {}
    for part in parts:
        merged.update(part)
    return merged


def in_processes(task: Callable[[list[int]], T], indices: list[int], sizes: Sequence[int | None],
                 workers: int) -> list[T]:
    """``task`` over shares of ``indices`` (by size, ``share_out``) in forked processes; in this process when one
    share is enough."""
    shares = share_out(indices, [sizes[i] for i in indices], min(workers, len(indices)))
    if len(shares) <= 1:
        return [task(shares[0] if shares else [])]
    return forked(task, shares)


def shard_summary(*, host: str, objects: Sequence[str], labels: str | None,
                  drift_joins: Mapping[str, Sequence[JoinEntry]], quality_joins: Mapping[str, Sequence[JoinEntry]],
                  unreadable: Sequence[dict[str, str]]) -> dict[str, Any]:
    return {"format": SHARD_FORMAT, "host": host, "objects": list(objects), "labels": labels,
            "joins": {"drift": {name: [e.to_list() for e in entries] for name, entries in drift_joins.items()},
                      "quality": {name: [e.to_list() for e in entries] for name, entries in quality_joins.items()}},
            "quality_unreadable": list(unreadable)}


def load_shard_summary(doc: Any) -> tuple[dict[str, list[JoinEntry]], dict[str, list[JoinEntry]], str | None]:
    """(drift join entries, quality join entries, labels fingerprint) of a shard summary (``PartialError``)."""
    if not isinstance(doc, Mapping) or doc.get("format") != SHARD_FORMAT:
        raise PartialError(f"a shard summary has format {SHARD_FORMAT!r}")
    try:
        joins = doc["joins"]
        drift = {str(name): [JoinEntry.from_list(e) for e in entries] for name, entries in joins["drift"].items()}
        quality = {str(name): [JoinEntry.from_list(e) for e in entries] for name, entries in joins["quality"].items()}
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise PartialError(f"shard summary joins: {err}") from None
    return drift, quality, doc.get("labels")
