"""Raw objects → one CSV in two passes, in constant memory: the converter's engine.

One parse per record. Pass 1 reads every record (``csv/read.py``), flattens it
(``csv/columns.py``) and writes its CSV row to a temporary spool under the header
known so far (new columns are rare after the first rows, so nearly every row is
written under the final header). It also records a fingerprint of each id
(``csv/dedupe.py``), so memory stays flat whatever the input size.

Pass 2 writes the final header and copies the spool line by line; only rows
written under an earlier header are re-mapped, and only rows whose fingerprint
was seen twice are parsed, so that their real ids are compared: a fingerprint
collision never drops an event, and the first copy of a duplicate is kept.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import csv
import gzip
import json
import multiprocessing
import operator
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

from chalicelib.csv.columns import (
    FIXED_COLUMNS,
    InexactNumber,
    flatten_cells,
    json_text,
    neutralize,
    order_columns,
)
from chalicelib.csv.dedupe import ROW_BITS, ROW_MASK, Fingerprints, fingerprint
from chalicelib.csv.read import (
    BAD_LINE_CONTENT_CHARS,
    READ_BYTES,
    BadLine,
    exact_numbers,
    iter_json_objects,
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


Source = tuple[str, Callable[[], AbstractContextManager[BinaryIO]]]


def _as_bad_line(value: Any, source: str, line_number: int) -> BadLine:
    if isinstance(value, BadLine):
        return value
    shown = json_text(value)[:BAD_LINE_CONTENT_CHARS]
    return BadLine(source, line_number, "not a JSON object", shown)


_ROWS_PER_WRITE = 4096
_LINE_BREAKS = re.compile("[\r\n]")
_has_line_break = _LINE_BREAKS.search


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
    return open(path, mode, buffering=READ_BYTES)


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
    fingerprints = Fingerprints(tempfile.mkdtemp(prefix=f"ids-{index}-", dir=work))
    add_fingerprint = fingerprints.add
    row_base = index << ROW_BITS
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
                cells = flatten_cells(value, neutralize_formulas, exact=line is None)
            except InexactNumber:
                assert line is not None  # only orjson's readings are inexact
                value = exact_numbers(line)
                event_id = value.get("eventId")
                cells = flatten_cells(value, neutralize_formulas)
            if not columns.issuperset(cells):
                columns.update(cells)
                header = order_columns(columns)
                commas = len(header) - 1
                if segments[-1][0] == row:
                    segments[-1] = (row, header)
                else:
                    segments.append((row, header))
            if event_id is not None and event_id != "":
                add_fingerprint(fingerprint(event_id), row_base | row)
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
        fingerprints = Fingerprints(work)
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
        by_source.setdefault(row_id >> ROW_BITS, []).append(row_id & ROW_MASK)
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
        while block := spool.readlines(READ_BYTES):
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
