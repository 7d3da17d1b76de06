"""Windows of captured traffic and how to read capture files without holding them (pure: no AWS).

Endpoint data capture writes ``<capture prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``; the
inference Lambda's prediction log (Firehose) writes ``<log prefix>/yyyy/mm/dd/hh/<file>`` (no extension
by default). Ground-truth labels use the same hour partitions. Both writers name the hour after the
record's arrival, so a window of whole hours is a list of hour prefixes (``hour_prefixes``); listing and
streaming those objects from S3 is ``mlplatform.monitoring.capture_window``. Local files (``mlops drift``,
the Processing job's inputs) are streamed line by line here; gzip files (``.gz``) are decompressed on the fly.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

READ_CHUNK_BYTES = 1 << 20
"""Read size for S3 streams: large enough that per-read overhead vanishes, small next to Lambda memory."""


@dataclass(frozen=True)
class Window:
    """A half-open window ``[start, end)`` of whole UTC hours."""

    start: datetime
    end: datetime

    @classmethod
    def ending_at(cls, end: datetime, hours: int) -> Window:
        """The ``hours`` whole hours before ``end`` (rounded down to the hour)."""
        if hours < 1:
            raise ValueError(f"window hours is {hours}; allowed: >= 1")
        if end.tzinfo is None:
            raise ValueError("window end must be timezone-aware")
        end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return cls(start=end - timedelta(hours=hours), end=end)

    @property
    def hours(self) -> int:
        return int((self.end - self.start).total_seconds() // 3600)

    def shifted(self, hours: int) -> Window:
        return Window(start=self.start - timedelta(hours=hours), end=self.end - timedelta(hours=hours))

    def hour_starts(self) -> list[datetime]:
        return [self.start + timedelta(hours=h) for h in range(self.hours)]

    def to_dict(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "hours": self.hours}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def hour_prefixes(prefix: str, window: Window) -> list[str]:
    """``<prefix>/yyyy/mm/dd/hh/`` for every hour of the window (``prefix`` without a trailing slash)."""
    base = prefix.strip("/")
    lead = f"{base}/" if base else ""
    return [f"{lead}{hour:%Y/%m/%d/%H}/" for hour in window.hour_starts()]


def endpoint_capture_prefix(capture_prefix: str, endpoint: str, variant: str) -> str:
    base = capture_prefix.strip("/")
    return f"{base}/{endpoint}/{variant}" if base else f"{endpoint}/{variant}"


def iter_local_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        yield from split_lines(handle)


def iter_local_blocks(path: Path, read_bytes: int = 8 * READ_CHUNK_BYTES) -> Iterator[bytes]:
    """The raw bytes of a capture file (decompressed when ``.gz``) in reads of ``read_bytes``; the drift run
    re-cuts them at line ends (``mlcore.drift.capture_blocks.recut``)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        while chunk := handle.read(read_bytes):
            yield chunk


def local_capture_files(root: Path) -> list[Path]:
    """Capture files below a folder (or the file itself), in path order; hidden files are ignored."""
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def split_lines(handle: Any) -> Iterator[bytes]:
    reader = io.BufferedReader(handle, READ_CHUNK_BYTES) if not isinstance(handle, io.BufferedReader) else handle
    for line in reader:
        yield line.rstrip(b"\r\n")


def lines_of_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r")
    if pending:
        yield pending.rstrip(b"\r")
