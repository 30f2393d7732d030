"""Raw NDJSON (gzip or plain) → the spec's CSV, in constant memory.

Two passes, because the header is the union of the file's columns:

1. read every record, flatten it to formatted cells, spool it to a temporary
   file, note its columns and a 64-bit hash of its ``eventId``;
2. write the header, then replay the spool in input order, dropping every
   repeat of an ``eventId`` after its first.

Duplicates are found without holding every id in memory: pass 1 writes the
hashes into 256 partitions (spilled to disk in small blocks), and only the
hashes seen twice within a partition become candidates; pass 2 then compares
the real ids of candidate rows only, so a hash collision never drops an event.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import orjson

FIXED_COLUMNS = (
    "timestamp",
    "serverTimestamp",
    "sessionId",
    "metricName",
    "value",
    "demoContentId",
    "device",
    "deviceCodename",
    "language",
)
ATTRIBUTE_PREFIX = "attr_"
# Cells a spreadsheet would run as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
GZIP_MAGIC = b"\x1f\x8b"
# A line longer than this is read in pieces: it is concatenated objects with no
# newline between them (a Firehose stream without a delimiter), never one record.
MAX_LINE_BYTES = 1024 * 1024
# One object larger than this is not a stored event; it becomes a bad line.
MAX_OBJECT_CHARS = 4 * 1024 * 1024
BAD_LINE_CONTENT_CHARS = 64 * 1024
_PARTITIONS = 256
_SPILL_ENTRIES = 4096


@dataclass(frozen=True)
class BadLine:
    """A line that could not become a row; written under ``errors/``, never dropped."""

    source: str
    line: int
    reason: str
    content: str

    def to_json(self) -> bytes:
        return (
            orjson.dumps(
                {
                    "source": self.source,
                    "line": self.line,
                    "reason": self.reason,
                    "content": self.content,
                }
            )
            + b"\n"
        )


@dataclass
class ConversionReport:
    sources: int = 0
    rows: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    columns: list[str] = field(default_factory=list)
    output: str = ""
    errors_output: str = ""

    def as_log(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "sources": self.sources,
            "rows": self.rows,
            "duplicates": self.duplicates,
            "badLines": self.bad_lines,
            "errorsOutput": self.errors_output,
        }


def open_maybe_gzip(stream: BinaryIO) -> BinaryIO:
    """Gzip is told by its magic bytes, not by the name: Firehose names vary."""
    buffered = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[type-var]
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


# orjson reads integers beyond 64 bits as floats (changing them); the standard
# library keeps them exact, so such lines take the slower path.
_LONG_DIGITS = re.compile(rb"\d{20}")
_fallback_decoder = json.JSONDecoder(
    parse_constant=lambda name: (_ for _ in ()).throw(ValueError(f"{name} is not JSON"))
)


def iter_json_objects(stream: BinaryIO, source: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, value)`` for every JSON value; bad input as ``BadLine``.

    Accepts newline-delimited JSON and concatenated objects (``{...}{...}``)
    on one line or spread over many megabytes without a newline.
    """
    line_number = 0
    while True:
        chunk = stream.readline(MAX_LINE_BYTES)
        if not chunk:
            return
        line_number += 1
        if len(chunk) == MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            yield from _decode_long_line(chunk, stream, line_number, source)
            continue
        stripped = chunk.strip()
        if not stripped:
            continue
        if _LONG_DIGITS.search(stripped) is None:
            try:
                yield line_number, orjson.loads(stripped)
                continue
            except orjson.JSONDecodeError:
                pass
        yield from _decode_concatenated(stripped, line_number, source)


def _decode_text(data: bytes, line_number: int, source: str) -> str | BadLine:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadLine(
            source,
            line_number,
            f"not UTF-8 (byte {exc.start})",
            data[:BAD_LINE_CONTENT_CHARS].decode("utf-8", "backslashreplace"),
        )


def _decode_concatenated(data: bytes, line_number: int, source: str) -> Iterator[tuple[int, Any]]:
    text = _decode_text(data, line_number, source)
    if isinstance(text, BadLine):
        yield line_number, text
        return
    position, end = 0, len(text)
    while position < end:
        while position < end and text[position].isspace():
            position += 1
        if position >= end:
            return
        try:
            value, position = _fallback_decoder.raw_decode(text, position)
        except (ValueError, RecursionError) as exc:
            reason = f"not JSON: {exc}"
            yield (
                line_number,
                BadLine(
                    source, line_number, reason, text[position : position + BAD_LINE_CONTENT_CHARS]
                ),
            )
            return
        yield line_number, value


def _decode_long_line(
    first: bytes, stream: BinaryIO, line_number: int, source: str
) -> Iterator[tuple[int, Any]]:
    decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
    text = decoder.decode(first)
    line_done = False
    while True:
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                break
            try:
                value, position = _fallback_decoder.raw_decode(text, position)
            except (ValueError, RecursionError) as exc:
                incomplete = not line_done and len(text) - position < MAX_OBJECT_CHARS
                if incomplete:
                    break  # the object continues in the next piece
                yield (
                    line_number,
                    BadLine(
                        source,
                        line_number,
                        f"not JSON: {exc}",
                        text[position : position + BAD_LINE_CONTENT_CHARS],
                    ),
                )
                position = len(text)
                # Skip what is left of this line: it cannot be resynchronised safely.
                while not line_done:
                    piece = stream.readline(MAX_LINE_BYTES)
                    line_done = not piece or piece.endswith(b"\n")
                return
            yield line_number, value
        text = text[position:]
        if line_done:
            return
        piece = stream.readline(MAX_LINE_BYTES)
        if not piece or piece.endswith(b"\n"):
            line_done = True
        text += decoder.decode(piece, final=line_done)


def neutralize(text: str) -> str:
    return "'" + text if text and text[0] in FORMULA_TRIGGERS else text


def format_cell(value: Any, neutralize_formulas: bool) -> str:
    kind = type(value)
    if kind is str:
        return neutralize(value) if neutralize_formulas else value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)  # shortest text that reads back as the same float
    return orjson.dumps(value).decode("utf-8")  # lists (and anything else) as JSON


def flatten_record(record: dict[str, Any], neutralize_formulas: bool = True) -> dict[str, str]:
    """Top-level fields as they are, ``metricAttributes`` as ``attr_*``, nested with ``_``."""
    cells: dict[str, str] = {}
    for key, value in record.items():
        if type(value) is dict:
            prefix = ATTRIBUTE_PREFIX if key == "metricAttributes" else key + "_"
            _flatten_into(cells, prefix, value, neutralize_formulas)
        elif key == "metricAttributes" and type(value) is str:
            parsed = _parse_object(value)
            if parsed is None:
                cells[key] = format_cell(value, neutralize_formulas)
            else:
                _flatten_into(cells, ATTRIBUTE_PREFIX, parsed, neutralize_formulas)
        elif value is not None:
            cells[key] = format_cell(value, neutralize_formulas)
    return cells


def _parse_object(text: str) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _flatten_into(cells: dict[str, str], prefix: str, value: dict[str, Any], neutral: bool) -> None:
    for key, item in value.items():
        if type(item) is dict:
            _flatten_into(cells, f"{prefix}{key}_", item, neutral)
        elif item is not None:
            cells[prefix + key] = format_cell(item, neutral)


def order_columns(names: Iterable[str]) -> list[str]:
    """The spec's order: fixed columns, other top-level fields sorted, then ``attr_*`` sorted."""
    present = set(names)
    fixed = set(FIXED_COLUMNS)
    others = sorted(n for n in present if n not in fixed and not n.startswith(ATTRIBUTE_PREFIX))
    attributes = sorted(n for n in present if n.startswith(ATTRIBUTE_PREFIX))
    return [*FIXED_COLUMNS, *others, *attributes]


class _DuplicateCandidates:
    """Hashes of event ids, partitioned and spilled to disk so memory stays flat."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._blocks = [array("q") for _ in range(_PARTITIONS)]
        self._spilled: list[bool] = [False] * _PARTITIONS

    def add(self, digest: int) -> None:
        partition = digest & (_PARTITIONS - 1)
        block = self._blocks[partition]
        block.append(digest)
        if len(block) >= _SPILL_ENTRIES:
            self._spill(partition)

    def _spill(self, partition: int) -> None:
        with open(os.path.join(self._directory, f"ids-{partition}"), "ab") as handle:
            self._blocks[partition].tofile(handle)
        self._blocks[partition] = array("q")
        self._spilled[partition] = True

    def seen_twice(self) -> set[int]:
        candidates: set[int] = set()
        for partition in range(_PARTITIONS):
            digests = array("q")
            if self._spilled[partition]:
                path = os.path.join(self._directory, f"ids-{partition}")
                with open(path, "rb") as handle:
                    digests.frombytes(handle.read())
                os.unlink(path)
            digests.extend(self._blocks[partition])
            self._blocks[partition] = array("q")
            seen: set[int] = set()
            for digest in digests:
                if digest in seen:
                    candidates.add(digest)
                else:
                    seen.add(digest)
        return candidates


Source = tuple[str, Callable[[], AbstractContextManager[BinaryIO]]]


def convert(
    sources: Iterable[Source],
    output: BinaryIO,
    *,
    neutralize_formulas: bool = True,
    on_bad_line: Callable[[BadLine], None] | None = None,
    on_source_done: Callable[[str], None] | None = None,
    compress_spool: bool = False,
    spool_dir: str | None = None,
) -> ConversionReport:
    """Convert every source, in order, into one CSV written to ``output``.

    ``sources`` are ``(name, opener)`` pairs; ``opener()`` gives a binary
    stream (gzip or plain). ``compress_spool`` trades CPU for temporary disk
    (Lambda's /tmp is 512 MB).
    """
    report = ConversionReport()
    with (
        tempfile.TemporaryDirectory(prefix="csv-spool-", dir=spool_dir) as work,
        ExitStack() as stack,
    ):
        spool_path = os.path.join(work, "rows")
        spool: IO[bytes] | gzip.GzipFile = (
            gzip.open(spool_path, "wb", compresslevel=1)
            if compress_spool
            else open(spool_path, "wb", buffering=1024 * 1024)
        )
        stack.callback(spool.close)
        ids = _DuplicateCandidates(work)
        columns: set[str] = set()
        dumps = orjson.dumps
        for name, opener in sources:
            report.sources += 1
            with opener() as raw:
                for line_number, value in iter_json_objects(open_maybe_gzip(raw), name):
                    if type(value) is not dict:
                        bad = (
                            value
                            if isinstance(value, BadLine)
                            else BadLine(
                                name,
                                line_number,
                                "not a JSON object",
                                orjson.dumps(value).decode("utf-8")[:BAD_LINE_CONTENT_CHARS],
                            )
                        )
                        report.bad_lines += 1
                        if on_bad_line is not None:
                            on_bad_line(bad)
                        continue
                    cells = flatten_record(value, neutralize_formulas)
                    columns.update(cells)
                    # Hash the cell, as written, so pass 2 can recompute it from the spool.
                    event_id = cells.get("eventId")
                    if event_id is not None:
                        ids.add(hash(event_id))
                    spool.write(dumps(cells))
                    spool.write(b"\n")
            if on_source_done is not None:
                on_source_done(name)
        spool.close()
        report.columns = order_columns(columns)
        candidates = ids.seen_twice()
        text = io.TextIOWrapper(
            output, encoding="utf-8", errors="backslashreplace", newline="", write_through=False
        )
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(report.columns)
        header = report.columns
        seen_ids: dict[int, set[str]] = {}
        loads = orjson.loads
        opened: IO[bytes] | gzip.GzipFile = (
            gzip.open(spool_path, "rb") if compress_spool else open(spool_path, "rb", 1024 * 1024)
        )
        with opened as replay:
            for line in replay:
                cells = loads(line)
                event_id = cells.get("eventId")
                if event_id is not None and candidates:
                    digest = hash(event_id)
                    if digest in candidates:
                        same_hash = seen_ids.setdefault(digest, set())
                        if event_id in same_hash:
                            report.duplicates += 1
                            continue
                        same_hash.add(event_id)
                writer.writerow([cells.get(column, "") for column in header])
                report.rows += 1
        text.flush()
        text.detach()  # the caller owns ``output``
    return report
