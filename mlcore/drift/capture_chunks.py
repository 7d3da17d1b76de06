"""Parse a chunk of capture lines into columns, fast, with exactly ``mlcore.drift.capture``'s outcome.

``parse_capture_line`` is the definition of what a capture line means; per line it costs a ``json.loads``
plus a Python check per field (~20 µs for a 25-feature row), which makes it the bottleneck of a
million-record window. Almost all real lines have one rigid shape: SageMaker's compact JSON with CSV
payloads and no escapes beyond ``\\n``. For those this module:

1. matches the whole line against a strict template (one C-level regex match, no dict building);
2. reads the CSV payloads of the entire chunk with pandas' C CSV reader (one call, ~75 ns per field; its
   float parser rounds correctly, as ``float()`` does). A numeric column pandas does not type as numbers
   (a value such as ``nan``, ``1_0`` or ``True``) is converted the slower way, with numpy on the split
   text, which has ``float()``'s acceptance exactly;
3. sends every line that does not fit the template, and every chunk where a value does not convert, to
   ``parse_capture_line``, so malformed lines are counted with the same reasons.

The template only accepts lines whose meaning is unambiguous: no string escapes except ``\\n``, no control
characters or Unicode line separators (``str.splitlines`` would split on them), no blanks in CSV payloads
(the exact parser strips fields), encoding literally ``CSV``. ``tests/functional/test_drift_monitor_batch``
checks the equivalence on generated and fuzzed lines.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from mlcore.drift.capture import CaptureFormatError, CaptureRecord, parse_capture_line
from mlcore.outputs import output_for
from mlsettings.schema import DataSchema

FloatArray = npt.NDArray[np.float64]

# A JSON string body without escapes, quotes, control characters or characters splitlines() breaks on.
_PLAIN = r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029]'
# "Unrolled" (runs of plain characters between \n escapes): one repeat opcode per run, not per character.
_PAYLOAD_DATA = rf'({_PLAIN}*(?:\\n{_PLAIN}*)*)'
_INPUT = (r'"endpointInput":\{"observedContentType":"' + _PLAIN + r'*","mode":"' + _PLAIN + r'*",'
          r'"data":' + '"' + _PAYLOAD_DATA + '"' + r',"encoding":"CSV"\}')
_OUTPUT = (r'"endpointOutput":\{"observedContentType":"' + _PLAIN + r'*","mode":"' + _PLAIN + r'*",'
           r'"data":' + '"' + _PAYLOAD_DATA + '"' + r',"encoding":"CSV"\}')
_ID = rf'({_PLAIN}+)'
_METADATA = (  # SageMaker writes eventId, inferenceId, inferenceTime; our prediction log puts the id last
    r'"eventMetadata":\{"eventId":"' + _ID + '"'
    r'(?:,"inferenceId":"(' + _PLAIN + r'*)")?'
    r',"inferenceTime":"' + _ID + '"'
    r'(?:,"inferenceId":"(' + _PLAIN + r'*)")?\}'
)
_TEMPLATE = re.compile(
    r'\{"captureData":\{' + _INPUT + r'(?:,' + _OUTPUT + r')?\},' + _METADATA
    + r',"eventVersion":"' + _PLAIN + r'*"\}[ \t]*'
)


# The common line in ASCII classes (positive ones compile to bitmaps, ~2x faster than the negated Unicode
# classes): a JSON string character, and one CSV field the fast path can take as is (printable, no blank,
# quote, comma or backslash). Both are subsets of what ``_TEMPLATE`` and the checks in ``_parse_fast`` allow.
_ASCII_PLAIN = r'[ !#-\[\]-~]'
_FIELD = r'[!#-+\--\[\]-~]'


@functools.lru_cache(maxsize=8)
def _row_template(n_features: int) -> re.Pattern[str]:
    """``_TEMPLATE`` narrowed to the common line: ASCII, one request row of exactly ``n_features`` plain
    fields and at most one plain output token. A match needs none of the per-line checks ``_parse_fast``
    makes on a general template match; what it accepts, those checks accept too."""
    row = rf'(?!")({_FIELD}*(?:,{_FIELD}*){{{n_features - 1}}})'
    single_input = _INPUT.replace(_PAYLOAD_DATA, row)
    single_output = _OUTPUT.replace(_PAYLOAD_DATA, rf'({_FIELD}+)')
    pattern = (r'\{"captureData":\{' + single_input + r'(?:,' + single_output + r')?\},' + _METADATA
               + r',"eventVersion":"' + _PLAIN + r'*"\}[ \t]*')
    return re.compile(pattern.replace(_PLAIN, _ASCII_PLAIN))


def _interleave(first: npt.NDArray[np.bool_], ones: FloatArray, others: FloatArray) -> FloatArray:
    """Values in original order: ``ones`` where ``first`` is true, ``others`` elsewhere (each in order)."""
    merged = np.empty(first.size, dtype=np.float64)
    merged[first] = ones
    merged[~first] = others
    return merged


def _decoded(lines: Sequence[bytes | str]) -> list[str | None]:
    """Each line as text (None where it is not UTF-8), decoding a chunk of bytes lines in one call."""
    try:
        texts = b"\n".join(lines).decode("utf-8").split("\n")  # type: ignore[arg-type]
    except (TypeError, UnicodeDecodeError):  # str lines among them, or a line that is not UTF-8
        pass
    else:
        if len(texts) == len(lines):  # no line held a newline of its own
            return list(texts)
    decoded: list[str | None] = []
    for raw in lines:
        try:
            decoded.append(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except UnicodeDecodeError:
            decoded.append(None)
    return decoded


# pandas 3 parses floats correctly rounded by default (and deprecates the option); older versions (a
# SageMaker container's) need the round-trip parser for the same promise.
PANDAS_FLOAT_OPTIONS: dict[str, str] = ({} if int(pd.__version__.split(".", 1)[0]) >= 3
                                         else {"float_precision": "round_trip"})


@dataclass
class ParsedChunk:
    """One chunk as columns for ``DriftAccumulator.add_columns`` plus what could not be used."""

    columns: dict[str, FloatArray | list[str]]
    rows: int
    records: int
    probabilities: FloatArray
    malformed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    """Well-formed records deliberately not analysed (e.g. endpoint answers repeated in the prediction log)."""
    confidences: FloatArray | None = None
    """None for a binary model (``probabilities`` are its scores, the confidence is derived from them); for
    another kind ``probabilities`` holds each answer's drift value (the predicted class's index, the value) and
    this each answer's confidence (the top-class probability; empty for regression): mlcore.outputs."""


class CaptureChunkParser:
    """Parses chunks of raw lines for one schema.

    ``prediction_log=True`` reads the inference Lambda's log: records answered by the endpoint are
    skipped (endpoint data capture already has them), the others are features without a model score
    (their probabilities come from the fallback model, cache or safe default, not from a variant).
    """

    def __init__(self, schema: DataSchema, *, prediction_log: bool = False, fast: bool = True) -> None:
        self._names = schema.feature_names
        self._label = schema.label
        self._n = len(self._names)
        self._numeric = [i for i, spec in enumerate(schema.features) if spec.is_numeric]
        self._categorical = [i for i, spec in enumerate(schema.features) if not spec.is_numeric]
        self._categorical_set = frozenset(self._categorical)
        self._prediction_log = prediction_log
        # The fast path reads one probability per row; other kinds' answers go through the exact parser.
        self._output = output_for(schema.label)
        self._label = schema.label
        self._fast = fast and self._output.probability_per_row
        self._row_template = _row_template(self._n)

    def parse(self, lines: Sequence[bytes | str]) -> ParsedChunk:
        if self._fast:
            chunk = self._parse_fast(lines)
            if chunk is not None:
                return chunk
        return self._parse_exact(lines)

    # -- the definition --------------------------------------------------------------------------------

    def parse_record(self, line: bytes | str) -> CaptureRecord:
        return parse_capture_line(line, n_features=self._n, categorical_columns=self._categorical_set,
                                  feature_names=self._names, label=self._label)

    def _parse_exact(self, lines: Sequence[bytes | str]) -> ParsedChunk:
        fields: list[str] = []
        probabilities: list[float] = []
        confidences: list[float] | None = None if self._output.probability_per_row else []
        malformed: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        records = rows = 0
        for line in lines:
            try:
                record = self.parse_record(line)
            except CaptureFormatError as err:
                malformed[err.reason] += 1
                continue
            rows_added = self._take(record, fields, probabilities, skipped, confidences)
            if rows_added:
                records += 1
                rows += rows_added
        columns = self._columns(fields, rows)
        if columns is None:  # cannot happen: the exact parser validated every numeric field
            raise AssertionError("validated capture rows failed numeric conversion")
        return ParsedChunk(columns=columns, rows=rows, records=records,
                           probabilities=np.asarray(probabilities, dtype=np.float64),
                           malformed=malformed, skipped=skipped,
                           confidences=None if confidences is None else np.asarray(confidences, dtype=np.float64))

    def _take(self, record: CaptureRecord, fields: list[str], probabilities: list[float],
              skipped: Counter[str], confidences: list[float] | None = None) -> int:
        if self._prediction_log:
            if record.source == "endpoint":
                skipped["endpoint_answer_in_prediction_log"] += 1
                return 0
            skipped[f"scores_not_compared_{record.source}"] += 1
        elif confidences is None:
            probabilities.extend(record.probabilities)
        else:
            # Another kind's answers: the drift value and, where the kind has one, the confidence of each.
            for answer in record.answers:
                probabilities.append(self._output.drift_value(answer, self._label))
                confidence = self._output.confidence(answer)
                if confidence is not None:
                    confidences.append(confidence)
        for row in record.rows:
            fields.extend(row)
        return len(record.rows)

    # -- the fast path ---------------------------------------------------------------------------------

    def _parse_fast(self, lines: Sequence[bytes | str]) -> ParsedChunk | None:
        """None when the chunk must be parsed exactly (a value the template cannot judge). Rows and
        probabilities come out in line order, whichever way each line was read (``mlcore.drift.exact_sum``
        sums them in that order)."""
        count = len(lines)
        fast_texts: list[list[str] | None] = [None] * count   # per line: CSV row texts that fit the template
        fast_outputs: list[list[str]] = [[]] * count          # their probabilities, as text
        exact: list[CaptureRecord | None] = [None] * count    # per line: the exact parser's record
        malformed: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        commas = self._n - 1
        match = _TEMPLATE.fullmatch
        pending: list[int]  # lines the common-line pattern did not take
        if self._prediction_log:  # its records carry customAttributes: always the exact parser
            texts: list[str | None] = [None] * count
            pending = list(range(count))
        else:
            texts = _decoded(lines)
            match_row = self._row_template.fullmatch
            pending = []
            for index, text in enumerate(texts):
                found = None if text is None else match_row(text)
                if found is None:
                    pending.append(index)
                    continue
                # The common case, already checked by the pattern: one row, at most one output token.
                data, output = found.group(1, 2)
                fast_texts[index] = [data]
                if output is not None:
                    fast_outputs[index] = [output]
        for index in pending:
            text = texts[index]
            found = None if text is None else match(text)
            if found is not None:
                data, output = found.group(1, 2)
                # ASCII without blanks: no field the exact parser would strip, no row it would drop as blank.
                if data.isascii() and " " not in data and (output is None or (output.isascii()
                                                                              and " " not in output)):
                    if "\\n" not in data:
                        if data and data.count(",") == commas and (
                                output is None or (output and "," not in output and "\\n" not in output)):
                            fast_texts[index] = [data]
                            if output is not None:
                                fast_outputs[index] = [output]
                            continue
                    else:
                        request_rows = [r for r in data.split("\\n") if r]
                        if request_rows and all(r.count(",") == commas for r in request_rows):
                            tokens = ([] if output is None else
                                      [t for part in output.split("\\n") for t in part.split(",") if t])
                            if output is None or len(tokens) == len(request_rows):
                                fast_texts[index] = request_rows
                                fast_outputs[index] = tokens
                                continue
            # Anything unusual: the exact parser decides (and names the reason when it is malformed).
            try:
                exact[index] = self.parse_record(lines[index])
            except CaptureFormatError as err:
                malformed[err.reason] += 1
        return self._ordered_chunk(fast_texts, fast_outputs, exact, malformed, skipped)

    def _ordered_chunk(self, fast_texts: list[list[str] | None], fast_outputs: list[list[str]],
                       exact: list[CaptureRecord | None], malformed: Counter[str],
                       skipped: Counter[str]) -> ParsedChunk | None:
        fast_rows: list[str] = []
        output_tokens: list[str] = []
        exact_fields: list[str] = []
        probabilities: list[float] = []
        row_fast: list[bool] = []    # per row in line order: read by the template (else by the exact parser)
        score_fast: list[bool] = []  # per probability in line order
        records = 0
        for texts, outputs, record in zip(fast_texts, fast_outputs, exact, strict=True):
            if texts is not None:
                fast_rows.extend(texts)
                output_tokens.extend(outputs)
                row_fast.extend([True] * len(texts))
                score_fast.extend([True] * len(outputs))
                records += 1
            elif record is not None:
                before = len(probabilities)
                added = self._take(record, exact_fields, probabilities, skipped)
                if added:
                    records += 1
                    row_fast.extend([False] * added)
                score_fast.extend([False] * (len(probabilities) - before))
        rows = len(row_fast)
        columns = self._fast_columns(fast_rows, exact_fields, rows)
        if columns is None:
            return None
        scores = np.asarray(probabilities, dtype=np.float64)
        if output_tokens:
            try:
                fast_scores = np.asarray(output_tokens, dtype=np.float64)
            except ValueError:
                return None
            if not bool(np.all((fast_scores >= 0.0) & (fast_scores <= 1.0))):
                return None  # out of range or NaN: the exact parser counts these records as bad_output
            scores = _interleave(np.asarray(score_fast, dtype=bool), fast_scores, scores)
        if fast_rows and exact_fields:
            mask = np.asarray(row_fast, dtype=bool)
            n_fast = len(fast_rows)
            for name, values in columns.items():
                if isinstance(values, np.ndarray):
                    columns[name] = _interleave(mask, values[:n_fast], values[n_fast:])
        return ParsedChunk(columns=columns, rows=rows, records=records, probabilities=scores,
                           malformed=malformed, skipped=skipped)

    def _fast_columns(self, fast_rows: list[str], exact_fields: list[str],
                      rows: int) -> dict[str, FloatArray | list[str]] | None:
        """Columns of the template rows (pandas) followed by the exact parser's rows (``_columns``); the caller
        puts numeric columns back in line order."""
        fast = self._csv_columns(fast_rows)
        if fast is None:  # a numeric column pandas could not type: convert all of it the numpy way
            # Every fast row has exactly n fields, so one join + split gives the row-major field list.
            fields = (",".join(fast_rows).split(",") if fast_rows else []) + exact_fields
            return self._columns(fields, rows)
        rest = self._columns(exact_fields, rows - len(fast_rows))
        if rest is None:
            return None
        for name, values in fast.items():
            more = rest[name]
            if isinstance(values, list) and isinstance(more, list):
                values.extend(more)
            elif isinstance(values, np.ndarray) and isinstance(more, np.ndarray) and more.size:
                fast[name] = np.concatenate([values, more])
        return fast

    def _csv_columns(self, fast_rows: list[str]) -> dict[str, FloatArray | list[str]] | None:
        """The template rows' columns read by pandas; None when a numeric column is not all numbers or has
        an infinity (the exact parser rejects those as non_numeric; the caller finds out which)."""
        if not fast_rows:
            return {name: ([] if index in self._categorical_set else np.empty(0, dtype=np.float64))
                    for index, name in enumerate(self._names)}
        frame = pd.read_csv(
            io.StringIO("\n".join(fast_rows)), header=None, names=list(range(self._n)), engine="c",
            quoting=csv.QUOTE_NONE, skip_blank_lines=False, keep_default_na=False,
            na_values={index: [""] for index in self._numeric},  # only an empty field is missing
            dtype=dict.fromkeys(self._categorical, str), **PANDAS_FLOAT_OPTIONS)
        if len(frame) != len(fast_rows):  # pragma: no cover - every row has exactly n fields, no quotes
            raise AssertionError("pandas read a different number of rows")
        columns: dict[str, FloatArray | list[str]] = {}
        for index in self._numeric:
            series = frame[index]
            if series.dtype.kind not in "fiu":
                return None
            values = series.to_numpy(dtype=np.float64)
            if values.size and bool(np.isinf(values).any()):
                return None
            columns[self._names[index]] = values
        for index in self._categorical:
            columns[self._names[index]] = frame[index].tolist()
        return columns

    def _columns(self, fields: list[str], rows: int) -> dict[str, FloatArray | list[str]] | None:
        """Columns of a flat field list; None when a numeric field is not a finite number or missing."""
        n = self._n
        columns: dict[str, FloatArray | list[str]] = {}
        for index in self._categorical:
            columns[self._names[index]] = fields[index::n]
        for index in self._numeric:
            raw = fields[index::n]
            try:
                values = np.asarray(raw, dtype=np.float64)
            except ValueError:
                try:  # missing values ("") are the usual reason; other spellings of NaN convert already
                    values = np.asarray(["nan" if value == "" else value for value in raw], dtype=np.float64)
                except ValueError:
                    return None
            if values.size and bool(np.isinf(values).any()):
                return None  # the exact parser rejects infinities as non_numeric
            columns[self._names[index]] = values
        if any(len(column) != rows for column in columns.values()):  # pragma: no cover - internal invariant
            raise AssertionError("column lengths differ from the row count")
        return columns
