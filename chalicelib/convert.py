"""Raw NDJSON (gzip or plain) → the spec's CSV, in constant memory.

One parse per record. Pass 1 reads every record, flattens it and writes its
CSV row to a temporary spool under the header known so far (new columns are
rare after the first rows, so nearly every row is written under the final
header). It also writes a fingerprint of each ``eventId`` into 256 partitions
spilled to disk in small blocks, so memory stays flat whatever the input size.

Pass 2 writes the final header and copies the spool line by line; only rows
written under an earlier header are re-mapped, and only rows whose fingerprint
was seen twice are parsed, so that their real ids are compared: a fingerprint
collision never drops an event, and the first copy of a duplicate is kept.
"""

from __future__ import annotations

import bisect
import codecs
import concurrent.futures
import csv
import gzip
import json
import math
import multiprocessing
import operator
import os
import re
import tempfile
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
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
_READ_BYTES = 1024 * 1024
# A line longer than this is decoded as it streams: it is concatenated objects with
# no newline between them (a Firehose stream without a delimiter), never one record.
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
        record = {
            "source": self.source,
            "line": self.line,
            "reason": self.reason,
            "content": self.content,
        }
        try:
            return orjson.dumps(record) + b"\n"
        except orjson.JSONEncodeError:  # lone surrogates: keep them, escaped
            return json.dumps(record).encode("ascii") + b"\n"


def _json_text(value: Any) -> str:
    """Compact JSON; the standard library takes over where orjson refuses (integers
    beyond 64 bits, lone surrogates)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


class _StreamError(Exception):
    """The object itself is damaged (truncated gzip); what was read before is kept."""


def _iter_decompressed(raw: BinaryIO) -> Iterator[bytes]:
    """Bytes of a plain or gzip object (told by magic bytes: Firehose names vary),
    in bounded chunks, across concatenated gzip members."""
    data = raw.read(_READ_BYTES)
    if data[:2] != GZIP_MAGIC:
        while data:
            yield data
            data = raw.read(_READ_BYTES)
        return
    inflater = zlib.decompressobj(wbits=31)
    in_member = True
    while data:
        while data:
            try:
                out = inflater.decompress(data, _READ_BYTES)
            except zlib.error as exc:
                raise _StreamError(f"gzip data is damaged: {exc}") from None
            if out:
                yield out
            if inflater.eof:
                data = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
                in_member = bool(data)
            else:
                data = inflater.unconsumed_tail
                in_member = True
        data = raw.read(_READ_BYTES)
        in_member = in_member or bool(data)
    if in_member and not inflater.eof:
        raise _StreamError("gzip data ends early (truncated object)")


def _iter_lines(raw: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """``(line, complete)`` pairs. Lines are split in C over whole chunks; a line
    longer than MAX_LINE_BYTES comes in pieces, ``complete`` only on its last."""
    tail = b""
    in_long_line = False
    for chunk in _iter_decompressed(raw):
        if in_long_line:
            end = chunk.find(b"\n")
            if end < 0:
                yield chunk, False
                continue
            yield chunk[:end], True
            in_long_line = False
            chunk = chunk[end + 1 :]
        lines = (tail + chunk if tail else chunk).split(b"\n")
        tail = lines.pop()
        for line in lines:
            yield line, True
        if len(tail) > MAX_LINE_BYTES:
            yield tail, False
            tail = b""
            in_long_line = True
    if tail or in_long_line:
        yield tail, True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{text} overflows a number")
    return value


_fallback_decoder = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def iter_json_objects(stream: BinaryIO, source: str) -> Iterator[tuple[int, Any, bytes | None]]:
    """Yield ``(line_number, value, line)`` for every JSON value; bad input as ``BadLine``.

    Accepts gzip or plain, newline-delimited JSON and concatenated objects
    (``{...}{...}``) on one line or spread over megabytes without a newline.
    ``line`` is the raw text when the value is the whole line, else None.
    Whole lines are parsed by orjson, which reads an integer beyond 64 bits as a
    float; ``exact_numbers(line)`` parses such a line again, exactly.
    """
    line_number = 0
    loads = orjson.loads
    long_line: _LongLineDecoder | None = None
    try:
        for line, complete in _iter_lines(stream):
            if long_line is not None or not complete:
                if long_line is None:
                    line_number += 1
                    long_line = _LongLineDecoder(source, line_number)
                yield from ((line_number, v, None) for v in long_line.feed(line, complete))
                if complete:
                    long_line = None
                continue
            line_number += 1
            try:
                yield line_number, loads(line), line
                continue
            except orjson.JSONDecodeError:
                pass
            stripped = line.strip()
            if stripped:
                for value in _decode_concatenated(stripped, line_number, source):
                    yield line_number, value, None
    except _StreamError as exc:
        yield line_number + 1, BadLine(source, line_number + 1, str(exc), ""), None


def exact_numbers(line: bytes) -> Any:
    """The standard library's reading of a line: integers of any size stay exact."""
    return _fallback_decoder.decode(line.decode("utf-8"))


# orjson turns integers outside [-2**63, 2**64) into floats; a float this large may
# be one of them, so its line is read again exactly (real floats this large are rare).
_INEXACT_FLOAT = 9.2e18


class _InexactNumber(Exception):
    pass


def _holds_inexact(value: Any) -> bool:
    if type(value) is float:
        return not -_INEXACT_FLOAT < value < _INEXACT_FLOAT
    if type(value) is list:
        return any(_holds_inexact(item) for item in value)
    if type(value) is dict:
        return any(_holds_inexact(item) for item in value.values())
    return False


def _decode_text(data: bytes, line_number: int, source: str) -> str | BadLine:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        content = data[:BAD_LINE_CONTENT_CHARS].decode("utf-8", "backslashreplace")
        return BadLine(source, line_number, f"not UTF-8 (byte {exc.start})", content)


def _decode_concatenated(data: bytes, line_number: int, source: str) -> Iterator[Any]:
    text = _decode_text(data, line_number, source)
    if isinstance(text, BadLine):
        yield text
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
            resume = _next_object(text, position)
            yield from _bad_span(source, line_number, f"not JSON: {exc}", text[position:resume])
            position = resume
            continue
        yield value


def _next_object(text: str, position: int) -> int:
    """Where decoding can start again after a bad object: the next ``}{`` (how a stream
    without delimiters joins objects), else the end of the text."""
    found = text.find("}{", position)
    return len(text) if found < 0 else found + 1


def _bad_span(source: str, line_number: int, reason: str, span: str) -> Iterator[BadLine]:
    """A skipped span as bad lines of at most BAD_LINE_CONTENT_CHARS each: kept whole."""
    pieces = max(1, -(-len(span) // BAD_LINE_CONTENT_CHARS))
    for piece in range(pieces):
        content = span[piece * BAD_LINE_CONTENT_CHARS : (piece + 1) * BAD_LINE_CONTENT_CHARS]
        shown = reason if pieces == 1 else f"{reason} (part {piece + 1} of {pieces})"
        yield BadLine(source, line_number, shown, content)


class _LongLineDecoder:
    """Objects out of one very long line, as its pieces arrive."""

    def __init__(self, source: str, line_number: int) -> None:
        self._source = source
        self._line_number = line_number
        self._decoder = codecs.getincrementaldecoder("utf-8")("backslashreplace")
        self._text = ""
        self._skip_reason = ""  # set while skipping a bad object up to the next }{

    def feed(self, piece: bytes, final: bool) -> Iterator[Any]:
        text = self._text + self._decoder.decode(piece, final=final)
        position = 0
        while True:
            if self._skip_reason:
                resume = text.find("}{", position)
                if resume < 0:
                    # Keep the last character: a }{ may straddle two pieces.
                    keep = len(text) if final else max(position, len(text) - 1)
                    yield from self._bad(text[position:keep])
                    position = keep
                    break
                yield from self._bad(text[position : resume + 1])
                position = resume + 1
                self._skip_reason = ""
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                break
            try:
                value, position = _fallback_decoder.raw_decode(text, position)
            except (ValueError, RecursionError) as exc:
                if not final and len(text) - position < MAX_OBJECT_CHARS:
                    break  # the object continues in the next piece
                self._skip_reason = f"not JSON: {exc}"
                continue
            yield value
        if final and self._skip_reason and position < len(text):
            yield from self._bad(text[position:])
        self._text = text[position:]

    def _bad(self, span: str) -> Iterator[BadLine]:
        if span:
            yield from _bad_span(self._source, self._line_number, self._skip_reason, span)


def neutralize(text: str) -> str:
    return "'" + text if text and text[0] in FORMULA_TRIGGERS else text


# The same triggers as one string: `c in _TRIGGER_CHARS` is the cheapest test.
_TRIGGER_CHARS = "".join(FORMULA_TRIGGERS)


def format_cell(value: Any, neutralize_formulas: bool) -> str:
    """The CSV text of one value: what the converter writes for it."""
    return _text(_cell_value(value, neutralize_formulas))


def _cell_value(value: Any, neutral: bool, exact: bool = True) -> Any:
    """Strings (neutralized), numbers and None as they are; the csv module writes
    numbers with str() (shortest round-trip text for floats) and None as empty."""
    kind = type(value)
    if kind is str:
        return neutralize(value) if neutral else value
    if kind is bool:
        return "true" if value else "false"
    if kind is list:
        if not exact and _holds_inexact(value):
            raise _InexactNumber
        return _json_text(value)
    if value is None:
        return ""
    return value


def _text(value: Any) -> str:
    return value if type(value) is str else str(value)


def flatten_record(record: dict[str, Any], neutralize_formulas: bool = True) -> dict[str, str]:
    """Top-level fields as they are, ``metricAttributes`` as ``attr_*``, nested with ``_``."""
    cells = _flatten(record, neutralize_formulas).items()
    return {key: _text(value) for key, value in cells if value != ""}


def _flatten(record: dict[str, Any], neutral: bool, exact: bool = True) -> dict[str, Any]:
    """Cells as values ready for csv.writer. Reuses ``record`` (it is not needed again)."""
    """``exact`` is False for values read by orjson (see ``exact_numbers``)."""
    attributes = record.pop("metricAttributes", None)
    cells = record
    for key, value in record.items():
        kind = type(value)
        if kind is str:
            if neutral and value and value[0] in _TRIGGER_CHARS:
                cells[key] = "'" + value
        elif kind is int:
            pass  # csv text is str(value)
        elif kind is float:
            if not exact and not -_INEXACT_FLOAT < value < _INEXACT_FLOAT:
                raise _InexactNumber  # str(value) is the shortest round-trip text

        elif value is None:
            cells[key] = ""
        elif kind is dict:
            break  # rare: a nested top-level object; take the general path below
        else:
            cells[key] = _cell_value(value, neutral, exact)
    else:
        if attributes is not None:
            _add_attributes(cells, attributes, neutral, exact)
        return cells
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if type(value) is dict:
            _flatten_into(flat, key + "_", value, neutral, exact)
        else:
            if type(value) is float and not exact and not -_INEXACT_FLOAT < value < _INEXACT_FLOAT:
                raise _InexactNumber
            flat[key] = _cell_value(value, neutral, exact)
    if attributes is not None:
        _add_attributes(flat, attributes, neutral, exact)
    return flat


def _add_attributes(cells: dict[str, Any], attributes: Any, neutral: bool, exact: bool) -> None:
    if type(attributes) is dict:
        _flatten_into(cells, ATTRIBUTE_PREFIX, attributes, neutral, exact)
    elif type(attributes) is str:
        parsed = _parse_object(attributes)
        if parsed is None:
            cells["metricAttributes"] = _cell_value(attributes, neutral)
        else:
            _flatten_into(cells, ATTRIBUTE_PREFIX, parsed, neutral, exact=True)
    else:
        cells["metricAttributes"] = _cell_value(attributes, neutral, exact)


def _parse_object(text: str) -> dict[str, Any] | None:
    # Rare (the collector stores objects), so the exact, slower parser is fine.
    try:
        parsed = _fallback_decoder.decode(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _flatten_into(
    cells: dict[str, Any], prefix: str, value: dict[str, Any], neutral: bool, exact: bool
) -> None:
    for key, item in value.items():
        kind = type(item)
        if kind is dict:
            _flatten_into(cells, f"{prefix}{key}_", item, neutral, exact)
        elif kind is str:
            cells[prefix + key] = (
                "'" + item if neutral and item and item[0] in _TRIGGER_CHARS else item
            )
        elif kind is float:
            if not exact and not -_INEXACT_FLOAT < item < _INEXACT_FLOAT:
                raise _InexactNumber
            cells[prefix + key] = item
        elif item is not None:
            cells[prefix + key] = _cell_value(item, neutral, exact)


def order_columns(names: Iterable[str]) -> list[str]:
    """The spec's order: fixed columns, other top-level fields sorted, then ``attr_*`` sorted."""
    present = set(names)
    fixed = set(FIXED_COLUMNS)
    others = sorted(n for n in present if n not in fixed and not n.startswith(ATTRIBUTE_PREFIX))
    attributes = sorted(n for n in present if n.startswith(ATTRIBUTE_PREFIX))
    return [*FIXED_COLUMNS, *others, *attributes]


class _Fingerprints:
    """(fingerprint, row id) pairs in partitions, spilled to disk so memory stays flat."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._blocks = [array("q") for _ in range(_PARTITIONS)]
        self._spilled = [False] * _PARTITIONS

    def add(self, fingerprint: int, row_id: int) -> None:
        partition = fingerprint & (_PARTITIONS - 1)
        block = self._blocks[partition]
        block.append(fingerprint)
        block.append(row_id)
        if len(block) >= _SPILL_ENTRIES:
            self._spill(partition)

    def add_partitions(self, partitions: list[bytes]) -> None:
        """Take another ``_Fingerprints``' ``export()``, in C, block by block."""
        for partition, data in enumerate(partitions):
            if data:
                block = self._blocks[partition]
                block.frombytes(data)
                if len(block) >= _SPILL_ENTRIES:
                    self._spill(partition)

    def export(self) -> list[bytes]:
        """Everything held (all spilled parts too), as one bytes string per partition."""
        exported = []
        for partition in range(_PARTITIONS):
            exported.append(self._take(partition).tobytes())
        return exported

    def _spill(self, partition: int) -> None:
        with open(os.path.join(self._directory, f"ids-{partition}"), "ab") as handle:
            self._blocks[partition].tofile(handle)
        self._blocks[partition] = array("q")
        self._spilled[partition] = True

    def _take(self, partition: int) -> array[int]:
        pairs = array("q")
        if self._spilled[partition]:
            path = os.path.join(self._directory, f"ids-{partition}")
            with open(path, "rb") as handle:
                pairs.frombytes(handle.read())
            os.unlink(path)
            self._spilled[partition] = False
        pairs.extend(self._blocks[partition])
        self._blocks[partition] = array("q")
        return pairs

    def rows_sharing_a_fingerprint(self) -> set[int]:
        """Every row id whose fingerprint another row has too (the possible duplicates)."""
        rows: set[int] = set()
        for partition in range(_PARTITIONS):
            pairs = self._take(partition)
            fingerprints = pairs[0::2]
            if len(set(fingerprints)) == len(fingerprints):
                continue  # the usual case, decided in C
            first_row: dict[int, int] = {}
            for index in range(0, len(pairs), 2):
                fingerprint, row = pairs[index], pairs[index + 1]
                earlier = first_row.setdefault(fingerprint, row)
                if earlier != row:
                    rows.add(earlier)
                    rows.add(row)
        return rows


Source = tuple[str, Callable[[], AbstractContextManager[BinaryIO]]]


def _as_bad_line(value: Any, source: str, line_number: int) -> BadLine:
    if isinstance(value, BadLine):
        return value
    shown = _json_text(value)[:BAD_LINE_CONTENT_CHARS]
    return BadLine(source, line_number, "not a JSON object", shown)


_ROWS_PER_WRITE = 4096
_LINE_BREAKS = re.compile("[\r\n]")
_has_line_break = _LINE_BREAKS.search


def _fingerprint(event_id: Any) -> int:
    """63 bits of an id and its JSON type, the same in every process (``hash()`` is
    salted per process). Rows sharing one are compared exactly in pass 2 (on the CSV
    cell), so a collision costs only time."""
    text = event_id if type(event_id) is str else f"\x00{type(event_id).__name__}:{event_id}"
    data = text.encode("utf-8", "backslashreplace")
    return (zlib.crc32(data) << 31) ^ zlib.adler32(data)


# Row ids are (source index << 40) | row within the source: unique, and in output order.
_ROW_BITS = 40
_ROW_MASK = (1 << _ROW_BITS) - 1


def _csv_row(values: list[Any]) -> str:
    """csv.writer's QUOTE_MINIMAL row for 2 or more cells (tested equal), about twice
    as fast here: only cells holding a delimiter, quote or line break are quoted."""
    return ",".join(
        [
            '"' + value.replace('"', '""') + '"'
            if type(value) is str and _NEEDS_QUOTES.search(value)
            else str(value)
            for value in values
        ]
    )


_NEEDS_QUOTES = re.compile('[,"\r\n]')


def _write_rows(spool: IO[bytes], rows: list[str]) -> None:
    if rows:
        spool.write(("\n".join(rows) + "\n").encode("utf-8", "backslashreplace"))
        rows.clear()


def _open_spool(path: str, mode: str, compress: bool) -> IO[bytes]:
    if compress:
        return gzip.open(path, mode, compresslevel=1)  # type: ignore[return-value]
    return open(path, mode, buffering=_READ_BYTES)


@dataclass
class _SpooledSource:
    """Pass 1's result for one source: its rows as CSV text, and what pass 2 needs."""

    index: int
    name: str
    spool: str
    rows: int = 0
    # (first row, header) for each header the rows were written under.
    segments: list[tuple[int, list[str]]] = field(default_factory=list)
    # Rows spanning several physical lines (a cell holds a newline): row → lines.
    tall_rows: dict[int, int] = field(default_factory=dict)
    fingerprints: list[bytes] = field(default_factory=list)
    bad_lines: str = ""
    bad_line_count: int = 0


def _spool_source(
    index: int,
    name: str,
    opener: Callable[[], AbstractContextManager[BinaryIO]],
    work: str,
    neutralize_formulas: bool,
    compress_spool: bool,
) -> _SpooledSource:
    """Pass 1 for one source. Runs in a worker process when the export is parallel."""
    result = _SpooledSource(index, name, os.path.join(work, f"rows-{index}.csv"))
    fingerprints = _Fingerprints(tempfile.mkdtemp(prefix=f"ids-{index}-", dir=work))
    add_fingerprint = fingerprints.add
    row_base = index << _ROW_BITS
    segments, tall_rows = result.segments, result.tall_rows
    bad_handle: IO[bytes] | None = None
    pending: list[str] = []
    # Every source starts under the fixed columns, so even a record that flattens to
    # nothing ({}) has a header to be written under.
    header = list(FIXED_COLUMNS)
    columns = set(header)
    commas = len(header) - 1
    segments.append((0, header))
    row = 0
    with _open_spool(result.spool, "wb", compress_spool) as spool, opener() as raw:
        for line_number, value, line in iter_json_objects(raw, name):
            if type(value) is not dict:
                if bad_handle is None:
                    result.bad_lines = os.path.join(work, f"bad-{index}.jsonl")
                    bad_handle = open(result.bad_lines, "wb")
                bad_handle.write(_as_bad_line(value, name, line_number).to_json())
                result.bad_line_count += 1
                continue
            # The id as sent (before neutralizing), typed: 1 and "1" are not one event.
            event_id = value.get("eventId")
            try:
                cells = _flatten(value, neutralize_formulas, exact=line is None)
            except _InexactNumber:
                assert line is not None  # only orjson's readings are inexact
                value = exact_numbers(line)
                event_id = value.get("eventId")
                cells = _flatten(value, neutralize_formulas)
            if not columns.issuperset(cells):
                columns.update(cells)
                header = order_columns(columns)
                commas = len(header) - 1
                if segments[-1][0] == row:
                    segments[-1] = (row, header)
                else:
                    segments.append((row, header))
            if event_id is not None and event_id != "":
                add_fingerprint(_fingerprint(event_id), row_base | row)
            get = cells.get
            values = [get(column, "") for column in header]
            text = ",".join(map(str, values))
            # Most rows need no quoting: then joining in C is the CSV row, several
            # times faster than csv.writer. The others go through csv.writer.
            if text.count(",") != commas or '"' in text or _has_line_break(text):
                text = _csv_row(values)
                extra = text.count("\n")
                if extra:
                    tall_rows[row] = extra + 1
            pending.append(text)
            row += 1
            if len(pending) == _ROWS_PER_WRITE:
                _write_rows(spool, pending)
        _write_rows(spool, pending)
    if bad_handle is not None:
        bad_handle.close()
    result.rows = row
    result.fingerprints = fingerprints.export()
    return result


def _spool_all(
    sources: Iterable[Source], work: str, neutralize: bool, compress: bool, jobs: int
) -> Iterator[_SpooledSource]:
    """Pass 1 over every source, in order; in ``jobs`` worker processes when > 1."""
    if jobs <= 1:
        for index, (name, opener) in enumerate(sources):
            yield _spool_source(index, name, opener, work, neutralize, compress)
        return
    # spawn, not fork: the caller may have threads (a fork copies their locks).
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [
            pool.submit(_spool_source, index, name, opener, work, neutralize, compress)
            for index, (name, opener) in enumerate(sources)
        ]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def convert(
    sources: Iterable[Source],
    output: BinaryIO,
    *,
    neutralize_formulas: bool = True,
    on_bad_line: Callable[[BadLine], None] | None = None,
    on_source_done: Callable[[str], None] | None = None,
    compress_spool: bool = False,
    spool_dir: str | None = None,
    jobs: int = 1,
) -> ConversionReport:
    """Convert every source, in order, into one CSV written to ``output``.

    ``sources`` are ``(name, opener)`` pairs; ``opener()`` gives a binary
    stream (gzip or plain). ``compress_spool`` trades CPU for temporary disk
    (Lambda's /tmp is 512 MB). ``jobs`` > 1 reads sources in that many worker
    processes (openers must then be picklable); the output is the same bytes.
    """
    report = ConversionReport()
    with tempfile.TemporaryDirectory(prefix="csv-spool-", dir=spool_dir) as work:
        fingerprints = _Fingerprints(work)
        spooled: list[_SpooledSource] = []
        columns: set[str] = set()
        for source in _spool_all(sources, work, neutralize_formulas, compress_spool, jobs):
            report.sources += 1
            fingerprints.add_partitions(source.fingerprints)
            source.fingerprints = []
            if source.segments:
                columns.update(source.segments[-1][1])
            if source.bad_lines:
                report.bad_lines += source.bad_line_count
                _replay_bad_lines(source.bad_lines, on_bad_line)
            if on_source_done is not None:
                on_source_done(source.name)
            spooled.append(source)
        header = order_columns(columns)
        report.columns = header
        candidates = fingerprints.rows_sharing_a_fingerprint()
        report.rows, report.duplicates = _write_final(
            spooled, output, header, candidates, neutralize_formulas, compress_spool
        )
    return report


def _replay_bad_lines(path: str, on_bad_line: Callable[[BadLine], None] | None) -> None:
    if on_bad_line is not None:
        with open(path, "rb") as handle:
            for line in handle:
                fields = json.loads(line)  # not orjson: the content may hold lone surrogates
                on_bad_line(
                    BadLine(fields["source"], fields["line"], fields["reason"], fields["content"])
                )
    os.unlink(path)


def _write_final(
    spooled: list[_SpooledSource],
    output: BinaryIO,
    header: list[str],
    candidates: set[int],
    neutralize_formulas: bool,
    compress_spool: bool,
) -> tuple[int, int]:
    """Header, then every source's rows in order: copied as bytes when written under
    the final header, re-mapped when written under another, and parsed only when
    they may be a duplicate."""
    shown_header = [neutralize(c) for c in header] if neutralize_formulas else header
    output.write(_csv_row(shown_header).encode("utf-8", "backslashreplace") + b"\r\n")
    by_source: dict[int, list[int]] = {}
    for row_id in candidates:
        by_source.setdefault(row_id >> _ROW_BITS, []).append(row_id & _ROW_MASK)
    seen_ids: set[bytes] = set()
    rows = duplicates = 0
    for source in spooled:
        replay = _SourceReplay(source, header, by_source.get(source.index, []), seen_ids, output)
        with _open_spool(source.spool, "rb", compress_spool) as spool:
            if source.tall_rows:
                replay.row_by_row(spool)
            else:
                replay.in_blocks(spool)
        rows += replay.rows
        duplicates += replay.duplicates
        os.unlink(source.spool)
    return rows, duplicates


class _SourceReplay:
    """Pass 2 for one source's spool."""

    def __init__(
        self,
        source: _SpooledSource,
        header: list[str],
        candidates: list[int],
        seen_ids: set[bytes],
        output: BinaryIO,
    ) -> None:
        self._source = source
        self._header = header
        self._boundaries = [first for first, _ in source.segments[1:]] + [-1]
        self._segment = 0
        self._layout = _Layout(source.segments[0][1], header) if source.segments else None
        self._candidates = set(candidates)
        self._sorted_candidates = sorted(candidates)
        self._seen_ids = seen_ids
        self._write = output.write
        self.row = self.rows = self.duplicates = 0

    def _layout_for_row(self) -> _Layout:
        if self.row == self._boundaries[self._segment]:
            self._segment += 1
            self._layout = _Layout(self._source.segments[self._segment][1], self._header)
        assert self._layout is not None
        return self._layout

    def _one(self, line: bytes) -> None:
        layout = self._layout_for_row()
        if self.row in self._candidates:
            event_id = layout.event_id(line)
            if event_id in self._seen_ids:
                self.duplicates += 1
                self.row += 1
                return
            self._seen_ids.add(event_id)
        self._write(layout.final_row(line))
        self.rows += 1
        self.row += 1

    def row_by_row(self, spool: IO[bytes]) -> None:
        tall_rows = self._source.tall_rows
        lines = iter(spool)
        for line in lines:
            count = tall_rows.get(self.row, 1)
            if count > 1:
                line += b"".join(next(lines) for _ in range(count - 1))
            self._one(line)

    def in_blocks(self, spool: IO[bytes]) -> None:
        """One line is one row here, so a block of rows under the final header with no
        possible duplicate is copied in one C call."""
        while block := spool.readlines(_READ_BYTES):
            start, end = self.row, self.row + len(block)
            if start < end:
                layout = self._layout_for_row()
                next_layout = self._boundaries[self._segment]
                if layout.same and not start < next_layout < end and not self._checks(start, end):
                    self._write(b"".join(block).replace(b"\n", b"\r\n"))
                    self.rows += len(block)
                    self.row = end
                    continue
            for line in block:
                self._one(line)

    def _checks(self, start: int, end: int) -> bool:
        index = bisect.bisect_left(self._sorted_candidates, start)
        return index < len(self._sorted_candidates) and self._sorted_candidates[index] < end


class _Layout:
    """How rows written under one header become rows of the final header."""

    def __init__(self, written: list[str], final: list[str]) -> None:
        self.same = written == final
        position = {name: index for index, name in enumerate(written)}
        self._id_index = position.get("eventId", -1)
        width = len(written)
        self._pick = operator.itemgetter(*[position.get(name, width) for name in final])

    def _cells(self, line: bytes) -> list[bytes]:
        if b'"' not in line:
            return line[:-1].split(b",")  # rows without quotes split exactly on commas
        [cells] = csv.reader([line.decode("utf-8")], lineterminator="\n")
        return [cell.encode("utf-8") for cell in cells]

    def event_id(self, line: bytes) -> bytes:
        return self._cells(line)[self._id_index] if self._id_index >= 0 else b""

    def final_row(self, line: bytes) -> bytes:
        if self.same:
            # The spool's bytes are the output's; only the terminator becomes CRLF
            # (newlines inside quoted cells stay as they are).
            return line[:-1] + b"\r\n"
        cells = self._cells(line)
        cells.append(b"")
        picked = self._pick(cells)
        if b'"' not in line:
            return b",".join(picked) + b"\r\n"
        text = [cell.decode("utf-8") for cell in picked]
        return _csv_row(text).encode("utf-8", "backslashreplace") + b"\r\n"
