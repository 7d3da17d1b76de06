"""The block parser gives exactly what ``mlcore.drift.capture.parse_capture_line`` gives for each line of a block:
the same rows in the same order, the same probabilities, categories and malformed reasons — on generated,
edited and fuzzed blocks; and re-cutting raw reads at line ends loses and invents no line."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.drift.baseline import count_categories
from mlcore.drift.capture_blocks import BlockParser, ParsedBlock, block_lines, line_blocks, recut
from mlcore.drift.capture_chunks import CaptureChunkParser
from tests.functional import drift_monitor_testkit as kit
from tests.functional.test_drift_monitor_batch import EDITS


def assert_same(block: bytes) -> ParsedBlock:
    parsed = BlockParser(kit.SCHEMA).parse(block)
    exact = CaptureChunkParser(kit.SCHEMA, fast=False).parse(block_lines(block))
    assert (parsed.rows, parsed.records) == (exact.rows, exact.records)
    assert parsed.malformed == exact.malformed
    np.testing.assert_array_equal(parsed.probabilities, exact.probabilities)
    for index, name in enumerate(kit.NAMES):
        if kit.SCHEMA.features[index].is_numeric:
            np.testing.assert_array_equal(parsed.numeric[name], np.asarray(exact.columns[name], dtype=np.float64))
        else:
            assert parsed.categories[name] == count_categories(exact.columns[name])
    return parsed


def _block(rows: int = 40, *, seed: int = 1, inference_ids: bool = True, outputs: bool = True) -> bytes:
    data, scores = kit.traffic_rows(rows, seed=seed), kit.scores(rows, seed=seed)
    return b"".join(kit.csv_line([row], [p] if outputs else [], event_id=f"e{i}",
                                 inference_id=f"i{i}" if inference_ids else None).encode() + b"\n"
                    for i, (row, p) in enumerate(zip(data, scores, strict=True)))


def test_a_regular_block_takes_the_block_path_and_matches() -> None:
    for block in (_block(), _block(inference_ids=False), _block(outputs=False), _block().rstrip(b"\n")):
        assert assert_same(block).fast


def test_the_prediction_logs_layout_matches_too() -> None:
    # our prediction log writes inferenceId after inferenceTime
    line = json.loads(kit.csv_line([kit.traffic_rows(1)[0]], [0.5], event_id="e", inference_id="i"))
    metadata = line["eventMetadata"]
    line["eventMetadata"] = {"eventId": "e", "inferenceTime": metadata["inferenceTime"], "inferenceId": "i"}
    assert assert_same((json.dumps(line, separators=(",", ":")) + "\n").encode() * 3).fast


def test_anything_unusual_goes_line_by_line() -> None:
    block = _block()
    crlf = block.replace(b"\n", b"\r\n")
    multi = block + kit.csv_line(kit.traffic_rows(3), [0.1, 0.2, 0.3], event_id="m").encode() + b"\n"
    some_outputs = block + _block(3, outputs=False)
    for odd in (crlf, multi, some_outputs, block + b"\n\n" + block, b"not json\n" + block):
        assert not assert_same(odd).fast


@given(st.lists(st.tuples(st.integers(0, 19), st.sampled_from(EDITS), st.integers(0, 3)), max_size=8))
@settings(max_examples=60, deadline=None)
def test_edited_blocks_give_the_exact_parsers_answer(edits: list[tuple[int, tuple[str, str], int]]) -> None:
    lines = _block(20, seed=3).decode().splitlines()
    for position, (old, new), occurrence in edits:
        parts = lines[position].split(old)
        if len(parts) > 1:
            at = 1 + occurrence % (len(parts) - 1)
            lines[position] = old.join(parts[:at]) + new + old.join(parts[at:])
    assert_same(("\n".join(lines) + "\n").encode())


@given(st.lists(st.one_of(
    st.builds(lambda row, out: kit.csv_line([row], [], event_id="e").replace(
        '"encoding":"CSV"}}', f'"encoding":"CSV"}},"endpointOutput":{{"observedContentType":"text/csv",'
                              f'"mode":"OUTPUT","data":"{out}","encoding":"CSV"}}}}'),
              st.lists(st.sampled_from(["1", "0.5", "", "x", "nan", "1e3", "-0", "  2", "basic", "\t"]),
                       min_size=5, max_size=5),
              st.sampled_from(["0.5", "1", "0", "2", "nan", "1_0", ".5", "0.5,0.5", "-0.0", "1e-3"])),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
), max_size=12), st.booleans())
@settings(max_examples=150, deadline=None)
def test_fuzzed_blocks_never_crash_and_match(lines: list[Any], trailing_newline: bool) -> None:
    block = "\n".join(lines).encode("latin-1", "replace") + (b"\n" if trailing_newline else b"")
    assert_same(block)


@given(st.lists(st.integers(1, 300), min_size=1, max_size=30), st.integers(1, 400))
@settings(max_examples=60, deadline=None)
def test_recut_keeps_every_line_whatever_the_read_sizes(sizes: list[int], block_bytes: int) -> None:
    text = _block(12) + b"\r\n\nlast line without newline"
    reads, at = [], 0
    for size in sizes * 50:
        if at >= len(text):
            break
        reads.append(text[at:at + size])
        at += size
    reads.append(text[at:])
    blocks = list(recut(reads, block_bytes))
    assert b"".join(blocks) == text
    assert all(block.endswith(b"\n") for block in blocks[:-1])
    assert [line for block in blocks for line in block_lines(block)] == block_lines(text)


def test_lines_of_a_line_source_are_grouped_without_empty_ones() -> None:
    assert list(line_blocks([b"a", b"", b"b", b"c"], 2)) == [[b"a", b"b"], [b"c"]]
    parsed = BlockParser(kit.SCHEMA).parse([line for line in _block(5).split(b"\n") if line] + [b""])
    assert parsed.fast and parsed.rows == 5
    assert Counter(parsed.malformed) == Counter()
