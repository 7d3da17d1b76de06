"""Parse a chunk of capture lines into columns, fast, with exactly ``mlcore.capture``'s outcome.

``parse_capture_line`` is the definition of what a capture line means; per line it costs a ``json.loads``
plus a Python check per field (~20 µs for a 25-feature row), which makes it the bottleneck of a
million-record window. Almost all real lines have one rigid shape: SageMaker's compact JSON with CSV
payloads and no escapes beyond ``\\n``. For those this module:

1. matches the whole line against a strict template (one C-level regex match, no dict building);
2. splits the CSV payloads of the entire chunk at once and converts each numeric column with one numpy
   call (numpy converts Python strings with ``float()`` semantics, so acceptance is identical);
3. sends every line that does not fit the template, and every chunk where a value does not convert, to
   ``parse_capture_line``, so malformed lines are counted with the same reasons.

The template only accepts lines whose meaning is unambiguous: no string escapes except ``\\n``, no control
characters or Unicode line separators (``str.splitlines`` would split on them), no blanks in CSV payloads
(the exact parser strips fields), encoding literally ``CSV``. ``tests/functional/test_drift_monitor_batch``
checks the equivalence on generated and fuzzed lines.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mlcore.capture import CaptureFormatError, CaptureRecord, parse_capture_line
from mlcore.schema import DataSchema

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


class CaptureChunkParser:
    """Parses chunks of raw lines for one schema.

    ``prediction_log=True`` reads the inference Lambda's log: records answered by the endpoint are
    skipped (endpoint data capture already has them), the others are features without a model score
    (their probabilities come from the fallback model, cache or safe default, not from a variant).
    """

    def __init__(self, schema: DataSchema, *, prediction_log: bool = False, fast: bool = True) -> None:
        self._names = schema.feature_names
        self._n = len(self._names)
        self._numeric = [i for i, spec in enumerate(schema.features) if spec.is_numeric]
        self._categorical = [i for i, spec in enumerate(schema.features) if not spec.is_numeric]
        self._categorical_set = frozenset(self._categorical)
        self._prediction_log = prediction_log
        self._fast = fast

    def parse(self, lines: Sequence[bytes | str]) -> ParsedChunk:
        if self._fast:
            chunk = self._parse_fast(lines)
            if chunk is not None:
                return chunk
        return self._parse_exact(lines)

    # -- the definition --------------------------------------------------------------------------------

    def parse_record(self, line: bytes | str) -> CaptureRecord:
        return parse_capture_line(line, n_features=self._n, categorical_columns=self._categorical_set,
                                  feature_names=self._names)

    def _parse_exact(self, lines: Sequence[bytes | str]) -> ParsedChunk:
        fields: list[str] = []
        probabilities: list[float] = []
        malformed: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        records = rows = 0
        for line in lines:
            try:
                record = self.parse_record(line)
            except CaptureFormatError as err:
                malformed[err.reason] += 1
                continue
            rows_added = self._take(record, fields, probabilities, skipped)
            if rows_added:
                records += 1
                rows += rows_added
        columns = self._columns(fields, rows)
        if columns is None:  # cannot happen: the exact parser validated every numeric field
            raise AssertionError("validated capture rows failed numeric conversion")
        return ParsedChunk(columns=columns, rows=rows, records=records,
                           probabilities=np.asarray(probabilities, dtype=np.float64),
                           malformed=malformed, skipped=skipped)

    def _take(self, record: CaptureRecord, fields: list[str], probabilities: list[float],
              skipped: Counter[str]) -> int:
        if self._prediction_log:
            if record.source == "endpoint":
                skipped["endpoint_answer_in_prediction_log"] += 1
                return 0
            skipped[f"scores_not_compared_{record.source}"] += 1
        else:
            probabilities.extend(record.probabilities)
        for row in record.rows:
            fields.extend(row)
        return len(record.rows)

    # -- the fast path ---------------------------------------------------------------------------------

    def _parse_fast(self, lines: Sequence[bytes | str]) -> ParsedChunk | None:
        """None when the chunk must be parsed exactly (a value the template cannot judge)."""
        fast_rows: list[str] = []      # CSV row texts that fit the template, each with exactly n fields
        output_tokens: list[str] = []  # their probabilities, as text
        exact_fields: list[str] = []   # fields of rows the exact parser produced
        probabilities: list[float] = []
        malformed: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        records = rows = 0
        commas = self._n - 1
        match = _TEMPLATE.fullmatch
        use_template = not self._prediction_log
        for raw in lines:
            found = None
            if use_template:
                try:
                    found = match(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
                except UnicodeDecodeError:
                    found = None
            if found is not None:
                data, output = found.group(1, 2)
                # ASCII without blanks: no field the exact parser would strip, no row it would drop as blank.
                if data.isascii() and " " not in data and (output is None or (output.isascii()
                                                                              and " " not in output)):
                    if "\\n" not in data:
                        if data and data.count(",") == commas:
                            if output is None:
                                fast_rows.append(data)
                                records += 1
                                rows += 1
                                continue
                            if output and "," not in output and "\\n" not in output:
                                fast_rows.append(data)
                                output_tokens.append(output)
                                records += 1
                                rows += 1
                                continue
                    else:
                        request_rows = [r for r in data.split("\\n") if r]
                        if request_rows and all(r.count(",") == commas for r in request_rows):
                            tokens = ([] if output is None else
                                      [t for part in output.split("\\n") for t in part.split(",") if t])
                            if output is None or len(tokens) == len(request_rows):
                                fast_rows.extend(request_rows)
                                output_tokens.extend(tokens)
                                records += 1
                                rows += len(request_rows)
                                continue
            # Anything unusual: the exact parser decides (and names the reason when it is malformed).
            try:
                record = self.parse_record(raw)
            except CaptureFormatError as err:
                malformed[err.reason] += 1
                continue
            rows_added = self._take(record, exact_fields, probabilities, skipped)
            if rows_added:
                records += 1
                rows += rows_added
        # Every fast row has exactly n fields, so one join + split gives the row-major field list.
        fields = ",".join(fast_rows).split(",") if fast_rows else []
        fields += exact_fields
        columns = self._columns(fields, rows)
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
            scores = np.concatenate([scores, fast_scores])
        return ParsedChunk(columns=columns, rows=rows, records=records, probabilities=scores,
                           malformed=malformed, skipped=skipped)

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
