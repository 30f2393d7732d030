"""Pass 1 of the converter: one source's records → CSV rows in a temporary spool.

Each record is read (``read.py``), flattened (``columns.py``) and written as a CSV
row under the header known so far; its dedupe key's fingerprint goes to
``dedupe.py``. Memory stays bounded whatever the source holds:

- columns are admitted up to the column budget, first come first served; later
  keys go into one JSON cell, the overflow column, so no value is lost;
- the header a row was written under is not copied per change: each admitted
  column records the row it first appeared at, and pass 2 rebuilds any header;
- bad lines go to a file, up to a bound per source, then are only counted.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import IO, Any, BinaryIO

import orjson

from chalicelib.csv.columns import (
    FIXED_COLUMNS,
    OVERFLOW_COLUMN,
    InexactNumber,
    flatten_cells,
    json_text,
    order_columns,
)
from chalicelib.csv.dedupe import ROW_BITS, SPILL_ENTRIES, Fingerprints, fingerprint
from chalicelib.csv.read import (
    BAD_LINE_CONTENT_CHARS,
    READ_BYTES,
    BadLine,
    exact_numbers,
    iter_json_objects,
)

Source = tuple[str, Callable[[], AbstractContextManager[BinaryIO]]]
# Bad lines kept per source (in errors/); past either bound they are only counted.
MAX_BAD_LINES_KEPT = 10_000
MAX_BAD_BYTES_KEPT = 10 * 1024 * 1024
# Always a column, whatever the budget: pass 2 compares duplicates on it.
ID_COLUMN = "eventId"
_ROWS_PER_WRITE = 512


def csv_row(values: Iterable[Any]) -> str:
    """csv.writer's QUOTE_MINIMAL row for 2 or more cells (tested equal), about twice
    as fast here: only cells holding a delimiter, quote or line break are quoted. Four
    ``in`` scans (C loops over the string) cost less than one regex search per cell."""
    return ",".join(
        [
            '"' + value.replace('"', '""') + '"'
            if type(value) is str
            and ('"' in value or "," in value or "\n" in value or "\r" in value)
            else str(value)
            for value in values
        ]
    )


def quoted_row(texts: list[str], joined: str) -> str:
    """``csv_row`` of cells already as text (``str`` of each value), given ``joined``,
    their plain join: cells are searched only for the special characters ``joined``
    holds (commas alone, or with quotes: the usual cases here). The text of a number
    holds none, so every cell may be searched, and none is formatted twice."""
    if "\n" in joined or "\r" in joined:
        return ",".join(
            [
                '"' + text.replace('"', '""') + '"'
                if '"' in text or "," in text or "\n" in text or "\r" in text
                else text
                for text in texts
            ]
        )
    if '"' in joined:
        return ",".join(
            [
                '"' + text.replace('"', '""') + '"' if '"' in text or "," in text else text
                for text in texts
            ]
        )
    return ",".join(['"' + text + '"' if "," in text else text for text in texts])


def overflow_text(cells: dict[str, str]) -> str:
    """The overflow cell: the columns that did not fit, as {column: cell text}."""
    return orjson.dumps(dict(sorted(cells.items()))).decode("utf-8") if cells else ""


def open_spool(path: str, mode: str, compress: bool) -> IO[bytes]:
    if compress:
        return gzip.open(path, mode, compresslevel=1)  # type: ignore[return-value]
    return open(path, mode, buffering=READ_BYTES)


@dataclass
class SpooledSource:
    """Pass 1's result for one source: its rows as CSV text, and what pass 2 needs."""

    index: int
    name: str
    spool: str
    rows: int = 0
    # Columns in the order they were admitted, each with the row it first appeared at.
    admitted: list[tuple[str, int]] = field(default_factory=list)
    # Rows spanning several physical lines (a cell holds a newline), ascending, and
    # how many lines each spans.
    tall_rows: array[int] = field(default_factory=lambda: array("q"))
    tall_lines: array[int] = field(default_factory=lambda: array("q"))
    # Per partition, one row per key (triples, as bytes) and the path of its drop list.
    fingerprints: list[bytes] = field(default_factory=list)
    drop_lists: list[str] = field(default_factory=list)
    bad_lines: str = ""
    bad_line_count: int = 0
    admitted_file: str = ""

    def spill_admitted(self, work: str) -> None:
        """Keep the admitted columns on disk until pass 2 needs them: the parent holds
        one source's columns at a time, not every source's."""
        self.admitted_file = os.path.join(work, f"columns-{self.index}.json")
        with open(self.admitted_file, "wb") as handle:
            handle.write(orjson.dumps(self.admitted))
        self.admitted = []

    def load_admitted(self) -> list[tuple[str, int]]:
        if not self.admitted_file:
            return self.admitted
        with open(self.admitted_file, "rb") as handle:
            return [(column, first) for column, first in orjson.loads(handle.read())]


class _BadLines:
    """Bad lines of one source in a file, bounded; the rest only counted."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self._source = source
        self._handle: IO[bytes] | None = None
        self.count = self._kept = self._kept_bytes = 0

    def add(self, bad: BadLine) -> None:
        self.count += 1
        # The byte bound is for content: a reason alone (a damaged object, a line too
        # deep) is small and says what happened, so only the line bound applies to it.
        if self._kept >= MAX_BAD_LINES_KEPT or (
            bad.content and self._kept_bytes >= MAX_BAD_BYTES_KEPT
        ):
            return
        if self._handle is None:
            self._handle = open(self.path, "wb")
        data = bad.to_json()
        self._kept += 1
        self._kept_bytes += len(data)
        self._handle.write(data)

    def close(self) -> bool:
        """Finish the file (with a line saying how many were not kept); True if any."""
        if self._handle is None:
            return False
        if self.count > self._kept:
            reason = (
                f"{self.count - self._kept} more bad line(s) in this object were counted but "
                f"not kept (at most {MAX_BAD_LINES_KEPT} lines or "
                f"{MAX_BAD_BYTES_KEPT // 2**20} MiB are kept per object)"
            )
            self._handle.write(BadLine(self._source, 0, reason, "").to_json())
        self._handle.close()
        return True


def _as_bad_line(value: Any, source: str, line_number: int) -> BadLine:
    if isinstance(value, BadLine):
        return value
    shown = json_text(value)[:BAD_LINE_CONTENT_CHARS]
    return BadLine(source, line_number, "not a JSON object", shown)


def _write_rows(spool: IO[bytes], rows: list[str]) -> None:
    if rows:
        # The output's line ends already: pass 2 copies runs of rows as they are.
        spool.write(("\r\n".join(rows) + "\r\n").encode("utf-8", "backslashreplace"))
        rows.clear()


def _split_overflow(
    cells: dict[str, Any], columns: set[str], limit: int, admitted: list[tuple[str, int]], row: int
) -> bool:
    """Admit the record's new columns while the budget lasts (``limit`` named columns);
    move the others into the overflow cell. True if the header changed."""
    changed = False
    extra: dict[str, str] = {}
    # A record's own _overflow key (only raw lines from elsewhere can have one) is never
    # the overflow cell: it goes into it, under its name.
    own = cells.pop(OVERFLOW_COLUMN, "")
    if own != "":
        extra[OVERFLOW_COLUMN] = own if type(own) is str else str(own)
    for column in list(cells):
        if column in columns:
            continue
        value = cells[column]
        # A slot stays reserved for the id column until it has one.
        named = len(columns) - (OVERFLOW_COLUMN in columns)
        room = limit - (ID_COLUMN not in columns)
        if column != OVERFLOW_COLUMN and (named < room or column == ID_COLUMN):
            columns.add(column)
            admitted.append((column, row))
            changed = True
        else:
            del cells[column]
            if value != "":
                extra[column] = value if type(value) is str else str(value)
    if extra:
        cells[OVERFLOW_COLUMN] = overflow_text(extra)
        if OVERFLOW_COLUMN not in columns:
            columns.add(OVERFLOW_COLUMN)
            admitted.append((OVERFLOW_COLUMN, row))
            changed = True
    return changed


def spool_source(
    index: int,
    name: str,
    opener: Callable[[], AbstractContextManager[BinaryIO]],
    work: str,
    neutralize_formulas: bool,
    compress_spool: bool,
    max_columns: int,
) -> SpooledSource:
    """Pass 1 for one source. Runs in a worker process when the export is parallel."""
    result = SpooledSource(index, name, os.path.join(work, f"rows-{index}.csv"))
    fingerprints = Fingerprints(tempfile.mkdtemp(prefix=f"ids-{index}-", dir=work), compact=True)
    add_fingerprint, blocks, spill = fingerprints.add, fingerprints.blocks, fingerprints.spill
    row_base = index << ROW_BITS
    tall_rows, tall_lines = result.tall_rows, result.tall_lines
    bad_lines = _BadLines(os.path.join(work, f"bad-{index}.jsonl"), name)
    pending: list[str] = []
    # Every source starts under the fixed columns, so even a record that flattens to
    # nothing ({}) has a header to be written under.
    header = list(FIXED_COLUMNS)
    columns = set(header)
    admitted = result.admitted
    admitted.extend((column, 0) for column in header)
    limit = max(max_columns - 1, len(header))  # one column stays free for the overflow
    blank_row = dict.fromkeys(header, "")
    commas = len(header) - 1
    row = 0
    with open_spool(result.spool, "wb", compress_spool) as spool, opener() as raw:
        for line_number, value, line in iter_json_objects(raw, name):
            if type(value) is not dict:
                bad_lines.add(_as_bad_line(value, name, line_number))
                continue
            # The key as sent (before neutralizing), typed: 1 and "1" are not one event.
            session_id, event_id = value.get("sessionId"), value.get(ID_COLUMN)
            try:
                try:
                    cells = flatten_cells(value, neutralize_formulas, line is None)
                except InexactNumber:
                    assert line is not None  # only orjson's readings are inexact
                    value = exact_numbers(line)
                    session_id, event_id = value.get("sessionId"), value.get(ID_COLUMN)
                    cells = flatten_cells(value, neutralize_formulas)
            except (RecursionError, orjson.JSONEncodeError, ValueError) as exc:
                reason = f"cannot be a row (nested too deeply?): {type(exc).__name__}"
                bad_lines.add(BadLine(name, line_number, reason, ""))
                continue
            if event_id is not None and event_id != "":
                # dedupe.fingerprint and Fingerprints.add inlined for the usual key, two
                # strings (tests: same bytes).
                if type(session_id) is str and type(event_id) is str:
                    key = (session_id + "\x1e" + event_id).encode("utf-8", "backslashreplace")
                    digest = blake2b(key).digest()[:16]
                    block = blocks[digest[0]]
                    block.frombytes(digest)
                    block.append(row_base | row)
                    if len(block) >= SPILL_ENTRIES:
                        spill(digest[0])
                else:
                    add_fingerprint(fingerprint(session_id, event_id), row_base | row)
            # The row's cells (text already) in header order, "" where the record has none:
            # one merge in C. It is longer than the header when the record brings columns
            # the header lacks: they are admitted or overflowed, and the row merged again.
            merged = {**blank_row, **cells}
            if len(merged) != len(blank_row) or OVERFLOW_COLUMN in cells:
                if _split_overflow(cells, columns, limit, admitted, row):
                    header = order_columns(columns)
                    blank_row = dict.fromkeys(header, "")
                    commas = len(header) - 1
                merged = {**blank_row, **cells}
            texts = [*merged.values()]
            text = ",".join(texts)
            # Most rows need no quoting: then joining in C is the CSV row, several
            # times faster than csv.writer. The others go through quoted_row.
            if text.count(",") != commas or '"' in text or "\n" in text or "\r" in text:
                text = quoted_row(texts, text)
                extra = text.count("\n")
                if extra:
                    tall_rows.append(row)
                    tall_lines.append(extra + 1)
            pending.append(text)
            row += 1
            if len(pending) == _ROWS_PER_WRITE:
                _write_rows(spool, pending)
        _write_rows(spool, pending)
    if bad_lines.close():
        result.bad_lines = bad_lines.path
    result.bad_line_count = bad_lines.count
    result.rows = row
    result.fingerprints, result.drop_lists = fingerprints.finish_source()
    return result
