"""Parse captured traffic a block of bytes at a time, with exactly ``mlcore.drift.capture``'s outcome.

A per-line parser costs per line at least a Python call and one pass of Python's regular-expression engine over
the ~550 characters of a capture line (~1-2.5 µs), two thirds of a drift run. Almost every real block is
SageMaker's compact JSON with one CSV row per request, so a whole block (8 MB, ~15,000 lines) is judged at once:

1. **byte checks in C** over the block: printable ASCII and newlines only (``bytes.isascii``, one
   ``bytes.translate``), no backslash. Then every JSON string in it is plain text (no escape, no control
   character), quotes delimit strings exactly, and ``str.splitlines`` (which the exact parser applies to a
   payload) has nothing to split.
2. **one** ``findall`` of a strict template of the line (possessive quantifiers, no backtracking) over the
   block, which yields each line's request row and output token; the block is taken only when every line
   matched, and when the outputs are present on all lines or on none.
3. **one** call of pandas' C CSV reader for the rows of the block (categorical columns straight into pandas
   categories, counted without a Python string per value) and one conversion of the output tokens. The total
   comma count and pandas' refusal of over-long rows prove every row has exactly the schema's field count.

Everything else — CRLF files, escapes (multi-row requests are ``\\n``-joined), JSON or base64 payloads, blanks,
a value the checks cannot judge — goes to ``CaptureChunkParser`` line by line (its own template, then
``parse_capture_line`` for what that does not take), so the outcome is identical: the same rows in the same
order, the same probabilities, the same malformed reasons (``tests/functional/test_capture_blocks.py`` checks it
on generated, edited and fuzzed blocks). Rows come out in line order because ``mlcore.drift.exact_sum`` sums
values in that order.

Lines of a block: the bytes between newlines with trailing carriage returns removed; empty lines are not records
(as ``mlcore.drift.window.split_lines`` / ``lines_of_chunks`` and the run have always treated them).
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlcore.drift.baseline import is_missing_category
from mlcore.drift.capture import CaptureFormatError, CaptureRecord
from mlcore.drift.capture_chunks import PANDAS_FLOAT_OPTIONS, CaptureChunkParser
from mlcore.drift.ground_truth import ID_PATTERN, MALFORMED_LABELLED_LINE, JoinEntry, entry_of_record
from mlcore.outputs import output_for
from mlsettings.schema import DataSchema

FloatArray = npt.NDArray[np.float64]

BLOCK_BYTES = 8 << 20
"""Bytes parsed at once: ~15,000 capture lines. Large enough that the per-call costs of the regular expression
and pandas vanish; small next to a Lambda's memory (the block, its rows as CSV and the columns: ~25 MB)."""

_PRINTABLE = bytes(range(0x20, 0x7F))
"""Deleted by ``bytes.translate`` to find anything else in a block (control characters, non-ASCII bytes)."""
_V = rb'[^"]'  # a JSON string character in a checked block: printable ASCII, no backslash, not a quote


def _line_template(ids: bool) -> re.Pattern[bytes]:
    """SageMaker's compact capture line with one CSV row per request; groups: the request row, the output token
    and, with ``ids``, eventId and the inferenceId (before or after inferenceTime)."""
    group = b"(" if ids else b"(?:"
    return re.compile(
        rb'^\{"captureData":\{"endpointInput":\{"observedContentType":"' + _V + rb'*+","mode":"' + _V + rb'*+",'
        rb'"data":"(' + _V + rb'++)","encoding":"CSV"\}'
        rb'(?:,"endpointOutput":\{"observedContentType":"' + _V + rb'*+","mode":"' + _V + rb'*+",'
        rb'"data":"(' + _V + rb'++)","encoding":"CSV"\})?\},'
        rb'"eventMetadata":\{"eventId":"' + group + _V + rb'++)"'
        # SageMaker writes eventId, inferenceId, inferenceTime; our prediction log puts the id last; never both.
        rb'(?:,"inferenceId":"' + group + _V + rb'*+)","inferenceTime":"' + _V + rb'++"'
        rb'|,"inferenceTime":"' + _V + rb'++"(?:,"inferenceId":"' + group + _V + rb'*+)")?)'
        rb'\},"eventVersion":"' + _V + rb'*+"\} *+$', re.MULTILINE)


_LINE_PATTERN = _line_template(ids=False)
_LINE_WITH_IDS = _line_template(ids=True)
@dataclass
class ParsedBlock:
    """A block as what ``DriftAccumulator.add_counted`` takes, plus what could not be used."""

    numeric: dict[str, FloatArray]
    categories: dict[str, tuple[Counter[str], int]]
    rows: int
    records: int
    lines: int
    probabilities: FloatArray
    malformed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    joins: list[JoinEntry] = field(default_factory=list)
    fast: bool = False
    """Whether the whole block took the block path (for benchmarks and tests)."""
    confidences: FloatArray | None = None
    """As ``ParsedChunk.confidences``: None for a binary model's scores."""


class BlockParser:
    """Parses blocks of capture lines for one schema (``prediction_log``: see ``CaptureChunkParser``)."""

    def __init__(self, schema: DataSchema, *, prediction_log: bool = False, fast: bool = True) -> None:
        self._schema = schema
        self._names = list(schema.feature_names)
        self._n = len(self._names)
        self._numeric = [i for i, spec in enumerate(schema.features) if spec.is_numeric]
        self._categorical = [i for i, spec in enumerate(schema.features) if not spec.is_numeric]
        self._prediction_log = prediction_log
        # The block path reads one probability per row; other kinds' answers go through the exact parser.
        self._fast = fast and output_for(schema.label).probability_per_row
        self._lines = CaptureChunkParser(schema, prediction_log=prediction_log, fast=fast)

    def parse_record(self, line: bytes | str) -> CaptureRecord:
        return self._lines.parse_record(line)

    def parse(self, block: bytes | Sequence[bytes], *, labelled: Callable[[str], bool] | None = None,
              first_line: int = 0) -> ParsedBlock:
        """``block``: bytes (lines split at newlines, trailing CR removed, empty lines skipped) or the lines of a
        line source as they are (empty ones skipped). ``labelled``: whether an id has a ground-truth label;
        ``first_line``: the object's ordinal of the block's first non-empty line (for ``JoinEntry.line``)."""
        lines = None if isinstance(block, bytes) else [line for line in block if line]
        if self._fast and not self._prediction_log:
            text = block if isinstance(block, bytes) else _joined(lines or [])
            if text is not None:
                parsed = self._parse_block(text, labelled, first_line)
                if parsed is not None:
                    return parsed
        if lines is None:
            lines = block_lines(block)  # type: ignore[arg-type]
        return self._parse_lines(lines, labelled, first_line)

    # -- the block path --------------------------------------------------------------------------------

    def _parse_block(self, block: bytes, labelled: Callable[[str], bool] | None,
                     first_line: int) -> ParsedBlock | None:
        if not block or not block.isascii() or b"\\" in block:
            return None
        others = block.translate(None, _PRINTABLE)
        if others.count(b"\n") != len(others):  # a control character besides the line breaks
            return None
        lines = len(others) + (0 if block.endswith(b"\n") else 1)
        found = (_LINE_PATTERN if labelled is None else _LINE_WITH_IDS).findall(block)
        if len(found) != lines:  # an empty line, or one that is not the template
            return None
        data = b"\n".join([item[0] for item in found])
        outputs = [item[1] for item in found if item[1]]
        if (outputs and len(outputs) != lines) or b" " in data or data.count(b",") != lines * (self._n - 1):
            return None  # outputs on some lines only, blanks the exact parser would strip, wrong field counts
        probabilities = np.empty(0, dtype=np.float64)
        if outputs:
            tokens = b"\n".join(outputs)
            if b" " in tokens or b"," in tokens:
                return None
            scores = self._read_scores(tokens, lines)
            if scores is None:
                return None
            probabilities = scores
        columns = self._read_rows(data, lines)
        if columns is None:
            return None
        numeric, categories = columns
        joins = _block_joins(found, probabilities, labelled, first_line) if labelled is not None else []
        return ParsedBlock(numeric=numeric, categories=categories, rows=lines, records=lines, lines=lines,
                           probabilities=probabilities, joins=joins, fast=True)

    @staticmethod
    def _read_scores(tokens: bytes, lines: int) -> FloatArray | None:
        """One probability per line (pandas' reader: twice numpy's speed on text); None for anything but
        numbers in [0, 1] (the exact parser names those records bad_output or non_numeric)."""
        try:
            frame = pd.read_csv(io.BytesIO(tokens), header=None, names=[0], engine="c", quoting=csv.QUOTE_NONE,
                                skip_blank_lines=False, keep_default_na=False, **PANDAS_FLOAT_OPTIONS)
        except (ValueError, pd.errors.ParserError):
            return None
        column = frame[0]
        if len(column) != lines or column.dtype.kind not in "fiu":
            return None
        scores: FloatArray = np.asarray(column.to_numpy(dtype=np.float64), dtype=np.float64)
        if not bool(np.all((scores >= 0.0) & (scores <= 1.0))):
            return None  # out of range or NaN
        return scores

    def _read_rows(self, data: bytes, rows: int) -> tuple[dict[str, FloatArray],
                                                          dict[str, tuple[Counter[str], int]]] | None:
        try:
            frame = pd.read_csv(
                io.BytesIO(data), header=None, names=list(range(self._n)), engine="c", quoting=csv.QUOTE_NONE,
                skip_blank_lines=False, keep_default_na=False,
                na_values={index: [""] for index in self._numeric},  # only an empty field is missing
                dtype=dict.fromkeys(self._categorical, "category"), **PANDAS_FLOAT_OPTIONS)
        except (ValueError, pd.errors.ParserError):  # a row with more fields than the schema (ParserError)
            return None
        if len(frame) != rows:
            return None
        numeric: dict[str, FloatArray] = {}
        for index in self._numeric:
            series = frame[index]
            if series.dtype.kind in "fiu":
                values = series.to_numpy(dtype=np.float64)
            else:  # pandas could not type it as numbers: float()'s acceptance, on the text
                try:
                    values = np.asarray(["nan" if value == "" else value for value in series.astype(str)],
                                        dtype=np.float64)
                except ValueError:
                    return None
            if values.size and bool(np.isinf(values).any()):
                return None  # the exact parser rejects infinities as non_numeric
            numeric[self._names[index]] = values
        categories: dict[str, tuple[Counter[str], int]] = {}
        typed = []  # columns whose categories pandas typed (all values looked like numbers): their text is lost
        for index in self._categorical:
            column = frame[index]
            if column.cat.categories.dtype.kind not in "OTU":
                typed.append(index)
                continue
            codes = column.cat.codes.to_numpy()
            if codes.size and int(codes.min()) < 0:  # pandas made a value missing: judge it line by line
                return None
            tallies = np.bincount(codes, minlength=len(column.cat.categories))
            categories[self._names[index]] = _category_counts(
                (str(category), int(count)) for category, count in zip(column.cat.categories, tallies, strict=True))
        if typed:  # read those again as text, as the exact parser sees them
            text = pd.read_csv(io.BytesIO(data), header=None, names=list(range(self._n)), usecols=typed, engine="c",
                               quoting=csv.QUOTE_NONE, skip_blank_lines=False, keep_default_na=False,
                               dtype=dict.fromkeys(typed, str))
            for index in typed:
                counted = text[index].value_counts(dropna=False)
                if counted.index.hasnans:
                    return None
                categories[self._names[index]] = _category_counts(
                    (str(category), int(count)) for category, count in counted.items())
        return numeric, categories

    # -- line by line ----------------------------------------------------------------------------------

    def _parse_lines(self, lines: list[bytes], labelled: Callable[[str], bool] | None,
                     first_line: int) -> ParsedBlock:
        chunk = self._lines.parse(lines)
        numeric: dict[str, FloatArray] = {}
        categories: dict[str, tuple[Counter[str], int]] = {}
        for index, name in enumerate(self._names):
            values = chunk.columns[name]
            if index in self._numeric:
                numeric[name] = np.asarray(values, dtype=np.float64)
            else:
                counts = Counter(values)  # type: ignore[arg-type]
                categories[name] = _category_counts(counts.items())
        joins: list[JoinEntry] = []
        if labelled is not None:
            for ordinal, line in enumerate(lines, start=first_line):
                if any(labelled(found.decode("utf-8", "replace")) for found in ID_PATTERN.findall(line)):
                    joins.append(self._join_entry(line, ordinal))
        return ParsedBlock(numeric=numeric, categories=categories, rows=chunk.rows, records=chunk.records,
                           lines=len(lines), probabilities=chunk.probabilities, malformed=chunk.malformed,
                           skipped=chunk.skipped, joins=joins, confidences=chunk.confidences)

    def _join_entry(self, line: bytes, ordinal: int) -> JoinEntry:
        try:
            record = self.parse_record(line)
        except CaptureFormatError:
            return JoinEntry(line=ordinal, malformed=MALFORMED_LABELLED_LINE)
        return entry_of_record(ordinal, record)


def _category_counts(items: Iterable[tuple[str, int]]) -> tuple[Counter[str], int]:
    """Counts per category and the missing ones (``mlcore.drift.baseline.count_categories``'s rule)."""
    counts: Counter[str] = Counter()
    missing = 0
    for category, count in items:
        if not count:
            continue
        if is_missing_category(category):
            missing += count
        else:
            counts[category] += count
    return counts, missing


def _block_joins(found: list[tuple[bytes, ...]], probabilities: FloatArray,
                 labelled: Callable[[str], bool], first_line: int) -> list[JoinEntry]:
    """Lines of a block-path block with a labelled id. Their only ids are eventId and the one inferenceId (no
    quote can occur in a payload), which is what ``ID_PATTERN`` would find in the raw line."""
    raw: frozenset[bytes] | None = getattr(labelled, "raw", None)
    if raw is not None:  # a set of the labelled ids as bytes: no decoding for the lines without one
        hits = [position for position, item in enumerate(found)
                if item[2] in raw or (item[3] or item[4]) in raw]
    else:
        hits = [position for position, item in enumerate(found)
                if labelled(item[2].decode("ascii")) or labelled((item[3] or item[4]).decode("ascii"))]
    scores = probabilities.tolist() if hits and probabilities.size else []
    joins = []
    for position in hits:
        _, _, event_raw, before, after = found[position]
        inference_raw = before or after
        joins.append(JoinEntry(line=first_line + position, event_id=event_raw.decode("ascii"),
                               inference_id=inference_raw.decode("ascii") if inference_raw else None,
                               probabilities=(scores[position],) if scores else (), rows=1))
    return joins


def _joined(lines: Sequence[bytes]) -> bytes | None:
    """The non-empty lines of a line source as one block, or None when that would not give back the same lines
    (a line with a newline of its own, a line that is not bytes)."""
    try:
        text = b"\n".join(lines)
    except TypeError:
        return None
    return text if text.count(b"\n") == len(lines) - 1 else None


def block_lines(block: bytes) -> list[bytes]:
    """The non-empty lines of a block, trailing carriage returns removed."""
    lines = []
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if line:
            lines.append(line)
    return lines


def recut(chunks: Iterable[bytes], block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Raw reads of an object (any sizes) as blocks of whole lines of at least ``block_bytes`` (but the last)."""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        if not chunk:
            continue
        pending.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        joined = b"".join(pending)
        cut = joined.rfind(b"\n") + 1
        if cut == 0:  # one line longer than a block: keep reading
            pending, size = [joined], len(joined)
            continue
        yield joined[:cut]
        rest = joined[cut:]
        pending, size = ([rest], len(rest)) if rest else ([], 0)
    if size:
        yield b"".join(pending)


def line_blocks(lines: Iterable[bytes], lines_per_block: int) -> Iterator[list[bytes]]:
    """The lines of a line source in lists of ``lines_per_block`` (empty lines dropped: they are not records)."""
    buffer: list[bytes] = []
    for line in lines:
        if not line:
            continue
        buffer.append(line)
        if len(buffer) >= lines_per_block:
            yield buffer
            buffer = []
    if buffer:
        yield buffer
