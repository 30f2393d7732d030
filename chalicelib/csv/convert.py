"""Raw objects → one CSV in two passes, in constant memory: the converter's engine.

Pass 1 (``spool.py``) reads each source into a spool of CSV rows written under the
header known so far, within the column budget, and fingerprints each dedupe key
(``dedupe.py``); sources run in worker processes when ``jobs`` > 1.

Between the passes the file's header is chosen: every column when the union fits
the budget; past it, the fixed columns and ``eventId``, then the columns found in
the most sources (a burst of one-off keys in one object cannot push out the keys
every object has), the rest going to the overflow column.

Pass 2 writes the header and copies each spool: rows written under the final
header are copied as bytes, others re-mapped (cells moved to or from the overflow
column as the final header says), and the rows the dedupe index names as later
copies of a key are left out: the first copy of a duplicate is kept.
"""

from __future__ import annotations

import csv
import json
import operator
import os
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate
from typing import IO, Any, BinaryIO

import orjson

from chalicelib.csv.columns import (
    DEFAULT_MAX_COLUMNS,
    FIXED_COLUMNS,
    OVERFLOW_COLUMN,
    case_spellings,
    header_cell,
    order_columns,
)
from chalicelib.csv.dedupe import ROW_BITS, Fingerprints
from chalicelib.csv.read import READ_BYTES, BadLine
from chalicelib.csv.spool import (
    ID_COLUMN,
    Source,
    SpooledSource,
    csv_row,
    open_spool,
    overflow_text,
    spool_source,
)
from chalicelib.workers import results_in_order

__all__ = ["ConversionReport", "Source", "convert"]


@dataclass
class ConversionReport:
    """What one conversion wrote: its sources, rows, duplicates dropped, bad lines, columns."""

    sources: int = 0
    rows: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    columns: list[str] = field(default_factory=list)
    output: str = ""
    errors_output: str = ""

    @property
    def overflowed(self) -> bool:
        return OVERFLOW_COLUMN in self.columns

    def as_log(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "sources": self.sources,
            "rows": self.rows,
            "duplicates": self.duplicates,
            "badLines": self.bad_lines,
            "columns": len(self.columns),
            "overflow": self.overflowed,
            "errorsOutput": self.errors_output,
        }


class _ColumnPool:
    """The file's candidate columns, bounded: how many sources hold each, and when it
    was first seen. Past 4x the budget the rarest are dropped (to the overflow)."""

    def __init__(self, max_columns: int) -> None:
        self.limit = max(max_columns - 1, len(FIXED_COLUMNS))  # one left for the overflow
        self._pool: dict[str, list[int]] = {}
        self._seen = 0
        self.overflow = False

    def add(self, columns: Iterable[str]) -> None:
        for column in columns:
            if column == OVERFLOW_COLUMN:
                self.overflow = True
                continue
            entry = self._pool.get(column)
            if entry is None:
                self._pool[column] = [1, self._seen]
                self._seen += 1
            else:
                entry[0] += 1
        if len(self._pool) > 4 * self.limit:
            kept = self._ranked()[: 2 * self.limit]
            self._pool = {column: self._pool[column] for column in kept}
            self.overflow = True

    def _ranked(self) -> list[str]:
        fixed = set(FIXED_COLUMNS)
        return sorted(
            self._pool,
            key=lambda c: (c not in fixed, c != ID_COLUMN, -self._pool[c][0], self._pool[c][1]),
        )

    def header(self) -> list[str]:
        # Names equal ignoring case are one column, spelled as case_spellings says, at the
        # rank of its best-ranked spelling.
        spelling = case_spellings(self._pool)
        ranked = list(dict.fromkeys(spelling[name.lower()] for name in self._ranked()))
        overflow = self.overflow or len(ranked) > self.limit
        return order_columns(ranked[: self.limit] + ([OVERFLOW_COLUMN] if overflow else []))


def _spool_all(
    sources: Iterable[Source],
    work: str,
    neutralize: bool,
    compress: bool,
    max_columns: int,
    jobs: int,
) -> Iterator[SpooledSource]:
    """Pass 1 over every source, in order; in ``jobs`` worker processes when > 1."""
    yield from results_in_order(
        jobs,
        spool_source,
        (
            (index, name, opener, work, neutralize, compress, max_columns)
            for index, (name, opener) in enumerate(sources)
        ),
    )


def convert(
    sources: Iterable[Source],
    output: BinaryIO,
    *,
    neutralize_formulas: bool = True,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    on_bad_line: Callable[[BadLine], None] | None = None,
    on_source_done: Callable[[str], None] | None = None,
    compress_spool: bool = False,
    spool_dir: str | None = None,
    jobs: int = 1,
) -> ConversionReport:
    """Convert every source, in order, into one CSV written to ``output``.

    ``sources`` are ``(name, opener)`` pairs; ``opener()`` gives a binary
    stream (gzip or plain). ``max_columns`` bounds the header (the overflow column
    included). ``compress_spool`` trades CPU for temporary disk (Lambda's /tmp is
    512 MB). ``jobs`` > 1 reads sources in that many worker processes (openers must
    then be picklable); the output is the same bytes.
    """
    report = ConversionReport()
    # The pid in the name tells remove_stale_spools whose spool it is.
    prefix = f"csv-spool-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=spool_dir) as work:
        fingerprints = Fingerprints(work)
        spooled: list[SpooledSource] = []
        pool = _ColumnPool(max_columns)
        for source in _spool_all(
            sources, work, neutralize_formulas, compress_spool, max_columns, jobs
        ):
            report.sources += 1
            fingerprints.add_source(source.fingerprints, source.drop_lists)
            source.fingerprints, source.drop_lists = [], []
            pool.add(column for column, _ in source.admitted)
            source.spill_admitted(work)
            if source.bad_lines:
                _replay_bad_lines(source.bad_lines, on_bad_line)
            report.bad_lines += source.bad_line_count
            if on_source_done is not None:
                on_source_done(source.name)
            spooled.append(source)
        header = pool.header()
        report.columns = header
        report.rows, report.duplicates = _write_final(
            spooled, output, header, fingerprints.drops(), neutralize_formulas, compress_spool
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
    spooled: list[SpooledSource],
    output: BinaryIO,
    header: list[str],
    drops: Iterator[int],
    neutralize_formulas: bool,
    compress_spool: bool,
) -> tuple[int, int]:
    """Header, then every source's rows in order: copied as bytes when written under
    the final header, re-mapped when written under another, and left out when the drop
    stream (duplicates, in row order) names them."""
    shown_header = [header_cell(column, neutralize_formulas) for column in header]
    output.write(csv_row(shown_header).encode("utf-8", "backslashreplace") + b"\r\n")
    pending = _Drops(drops)
    rows = duplicates = 0
    for source in spooled:
        replay = _SourceReplay(source, header, pending, output)
        with open_spool(source.spool, "rb", compress_spool) as spool:
            replay.in_blocks(spool)
        rows += replay.rows
        duplicates += replay.duplicates
        os.unlink(source.spool)
    return rows, duplicates


class _Drops:
    """The duplicate row ids, in order, one looked ahead."""

    _END = 1 << 62

    def __init__(self, drops: Iterator[int]) -> None:
        self._drops = drops
        self.next = next(drops, self._END)

    def take(self, row_id: int) -> bool:
        """Is ``row_id`` a duplicate? (Row ids are asked in increasing order.)"""
        if row_id != self.next:
            return False
        self.next = next(self._drops, self._END)
        return True


class _SourceReplay:
    """Pass 2 for one source's spool."""

    def __init__(
        self, source: SpooledSource, header: list[str], drops: _Drops, output: BinaryIO
    ) -> None:
        self._source = source
        self._admitted = source.load_admitted()
        source_columns = {column for column, _ in self._admitted}
        # Keys in this source's overflow cells may have a column in the final header.
        self._promote = OVERFLOW_COLUMN in source_columns and not source_columns.issuperset(header)
        self._header = header
        self._boundaries = [*sorted({first for _, first in self._admitted}), -1]
        self._segment = 0
        self._layout = self._layout_at(0)
        self._drops = drops
        self._base = source.index << ROW_BITS
        self._write = output.write
        self.row = self.rows = self.duplicates = 0

    def _layout_at(self, row: int) -> _Layout:
        written = order_columns(column for column, first in self._admitted if first <= row)
        return _Layout(written, self._header, self._promote)

    def _layout_for_row(self) -> _Layout:
        if self.row == self._boundaries[self._segment + 1]:
            self._segment += 1
            self._layout = self._layout_at(self.row)
        return self._layout

    def _one(self, line: bytes) -> None:
        layout = self._layout_for_row()
        if self._drops.take(self._base | self.row):
            self.duplicates += 1
            self.row += 1
            return
        self._write(layout.final_row(line))
        self.rows += 1
        self.row += 1

    def row_by_row(self, spool: IO[bytes]) -> None:
        tall_rows, tall_lines = self._source.tall_rows, self._source.tall_lines
        next_tall = 0
        lines = iter(spool)
        for line in lines:
            if next_tall < len(tall_rows) and tall_rows[next_tall] == self.row:
                line += b"".join(next(lines) for _ in range(tall_lines[next_tall] - 1))
                next_tall += 1
            self._one(line)

    def in_blocks(self, spool: IO[bytes]) -> None:
        """Rows between two things that change the output (a duplicate left out, a change
        of the header rows were written under) are copied as the spool's lines, in blocks
        (the spool ends rows with CRLF, as the output): a tall row (a cell holding a line
        break) needs no joining there. Rows written under another header go row by row."""
        lines = _SpoolLines(spool)
        extra = _ExtraLines(self._source.tall_rows, self._source.tall_lines)
        end = self._source.rows
        for segment, start in enumerate(self._boundaries[:-1]):
            stop = self._boundaries[segment + 1]
            stop = end if stop < 0 else min(stop, end)
            self._segment = segment
            layout = self._layout = self._layout_at(start)
            if not layout.same:
                for row in range(start, stop):
                    self._one(lines.take(extra.lines_of(row)))
                continue
            row = start
            while row < stop:
                dropped = min(stop, self._drops.next - self._base)
                if dropped > row:
                    lines.copy(extra.first_line(dropped) - extra.first_line(row), self._write)
                    self.rows += dropped - row
                    row = dropped
                if row < stop:  # a duplicate: left out
                    lines.take(extra.lines_of(row))
                    self._drops.take(self._base | row)
                    self.duplicates += 1
                    row += 1
            self.row = stop


class _ExtraLines:
    """Where a source's rows start among its spool's lines: a tall row spans more."""

    def __init__(self, tall_rows: array[int], tall_lines: array[int]) -> None:
        self._tall_rows = tall_rows
        self._tall_lines = tall_lines
        self._before = [0, *accumulate(count - 1 for count in tall_lines)]

    def first_line(self, row: int) -> int:
        return row + self._before[bisect_left(self._tall_rows, row)]

    def lines_of(self, row: int) -> int:
        at = bisect_left(self._tall_rows, row)
        if at < len(self._tall_rows) and self._tall_rows[at] == row:
            return self._tall_lines[at]
        return 1


class _SpoolLines:
    """A spool's lines, read a block at a time: copied on, or taken one row at a time."""

    def __init__(self, spool: IO[bytes]) -> None:
        self._spool = spool
        self._block: list[bytes] = []
        self._at = 0

    def _refill(self) -> bool:
        if self._at == len(self._block):
            self._block, self._at = self._spool.readlines(READ_BYTES), 0
        return bool(self._block)

    def copy(self, count: int, write: Callable[[bytes], object]) -> None:
        """Write the next ``count`` lines as they are, one write per block."""
        while count > 0 and self._refill():
            taken = min(count, len(self._block) - self._at)
            write(b"".join(self._block[self._at : self._at + taken]))
            self._at += taken
            count -= taken

    def take(self, count: int) -> bytes:
        """The next ``count`` lines joined (one row's)."""
        parts: list[bytes] = []
        self.copy(count, parts.append)
        return b"".join(parts)


class _Layout:
    """How rows written under one header become rows of the final header."""

    def __init__(self, written: list[str], final: list[str], promote: bool) -> None:
        self.same = written == final and not promote
        # The final header spells each name one way (case_spellings): a written column
        # goes to the final column equal to it ignoring case.
        self._spelling = {name.lower(): name for name in final}
        targets = [self._spelling.get(name.lower(), name) for name in written]
        position: dict[str, int] = {}
        # Final columns that two written spellings fill (rows from different events; in
        # one row, the later spelling's non-empty cell wins).
        merged: dict[str, list[int]] = {}
        for index, target in enumerate(targets):
            if target in position:
                merged.setdefault(target, [position[target]]).append(index)
            position[target] = index
        width = len(written)
        self._pick = operator.itemgetter(*[position.get(name, width) for name in final])
        kept = set(final)
        # Columns of this source that the final header has no room for.
        self._demoted = [
            (index, name)
            for index, (name, target) in enumerate(zip(written, targets, strict=True))
            if target not in kept and name != OVERFLOW_COLUMN
        ]
        self._merged = [
            (final.index(name), indexes) for name, indexes in merged.items() if name in kept
        ]
        self._overflow_in = position.get(OVERFLOW_COLUMN, -1)
        self._overflow_out = final.index(OVERFLOW_COLUMN) if OVERFLOW_COLUMN in kept else -1
        self._final_position = {name: index for index, name in enumerate(final)}
        self._promote = promote
        self._moves_cells = bool(self._demoted) or promote or bool(self._merged)

    def _cells(self, line: bytes) -> list[bytes]:
        if b'"' not in line:
            return line[:-2].split(b",")  # rows without quotes split exactly on commas
        [cells] = csv.reader([line.decode("utf-8")])
        return [cell.encode("utf-8") for cell in cells]

    def final_row(self, line: bytes) -> bytes:
        if self.same:
            return line  # the spool's bytes are the output's
        cells = self._cells(line)
        cells.append(b"")
        if self._moves_cells:
            return self._with_overflow([cell.decode("utf-8") for cell in cells])
        picked = self._pick(cells)
        if b'"' not in line:
            return b",".join(picked) + b"\r\n"
        text = [cell.decode("utf-8") for cell in picked]
        return csv_row(text).encode("utf-8", "backslashreplace") + b"\r\n"

    def _with_overflow(self, cells: list[str]) -> bytes:
        """Demoted cells join the overflow; overflow keys with a column leave it."""
        extra: dict[str, str] = {}
        if self._overflow_in >= 0 and cells[self._overflow_in]:
            extra = orjson.loads(cells[self._overflow_in])
        for index, name in self._demoted:
            if cells[index] != "":
                extra[name] = cells[index]
        out = list(self._pick(cells))
        for index, written in self._merged:
            out[index] = next((cells[i] for i in reversed(written) if cells[i] != ""), "")
        if self._promote:
            for key in [key for key in extra if key.lower() in self._spelling]:
                index = self._final_position[self._spelling[key.lower()]]
                if index != self._overflow_out:
                    out[index] = extra.pop(key)
        if self._overflow_out >= 0:
            out[self._overflow_out] = overflow_text(extra)
        return csv_row(out).encode("utf-8", "backslashreplace") + b"\r\n"
