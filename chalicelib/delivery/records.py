"""The delivery report's scan: raw records → compact rows on disk → one ordered pass.

Each stored record with a ``sessionId`` becomes one SQLite row of about 35 bytes: a
64-bit hash of its session id (blake2b: the same in every run), one of its event id
(this process's own ``hash``: only this run compares them), its ``seq``, its arrival
as a number, its day and a number for its (browser, device type). SQLite sorts them on
disk with a small page cache; each session id is kept once, in a second table, for
the gap runs the report names. So memory stays flat in the number of events, and the
disk holds about 40 bytes per record, twice that while sorting.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from chalicelib.csv.convert import Source
from chalicelib.csv.read import BadLine, iter_json_objects

# Numbers above this are not a counter's (the client's starts at 1 per page load):
# such an event counts as unnumbered rather than as 2**53 gaps.
MAX_SEQ = 2**53
# Distinct (browser, device type) pairs told apart; past them (only possible with raw
# files from elsewhere), the rest share one.
MAX_SLICES = 4096
OTHER_SLICE = ("(other)", "(other)")
_BATCH_ROWS = 8192
_CACHE_KIB = 4 * 1024

# (session key, seq or None, event key, arrival, day ordinal, slice number)
type Row = tuple[int, int | None, int, int, int, int]


def session_key(session: str) -> int:
    digest = hashlib.blake2b(session.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def arrival_number(text: Any) -> int:
    """``2026-12-07T10:00:00.123Z`` (a serverTimestamp) → 20261207100000123, ordered as
    the times are; 0 for anything else."""
    if type(text) is str and len(text) == 24:
        digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
        try:
            return int(digits + text[20:23])
        except ValueError:
            pass
    return 0


def day_of_key(key: str, raw_prefix: str) -> int | None:
    """``raw/YYYY/MM/DD/…`` → the day's ordinal, or None for a key of another layout."""
    relative = key[len(raw_prefix) :] if key.startswith(raw_prefix) else key
    try:
        return date(int(relative[0:4]), int(relative[5:7]), int(relative[8:10])).toordinal()
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value if type(value) is str else ""


class RecordSpool:
    """The records of a scan in a SQLite file under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self._db = sqlite3.connect(folder / "delivery.sqlite3", isolation_level=None)
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            "temp_store = FILE",
            f"cache_size = -{_CACHE_KIB}",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE r (session INTEGER NOT NULL, seq INTEGER, ekey INTEGER NOT NULL, "
            "arrived INTEGER NOT NULL, day INTEGER NOT NULL, slice INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE names (session INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        self._slices: dict[tuple[str, str], int] = {}
        self.sources = 0
        self.bad_lines = 0

    def close(self) -> None:
        self._db.close()

    def load(self, sources: Iterable[Source], raw_prefix: str) -> None:
        """Every record with a session id, of sources named by their raw keys."""
        rows: list[Row] = []
        names: list[tuple[int, str]] = []
        self._db.execute("BEGIN")
        for row in self._rows(sources, raw_prefix, names):
            rows.append(row)
            if len(rows) >= _BATCH_ROWS:
                self._write(rows, names)
        self._write(rows, names)
        self._db.execute("COMMIT")

    def _write(self, rows: list[Row], names: list[tuple[int, str]]) -> None:
        self._db.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._db.executemany("INSERT OR IGNORE INTO names VALUES (?, ?)", names)
        rows.clear()
        names.clear()

    def _rows(
        self, sources: Iterable[Source], raw_prefix: str, names: list[tuple[int, str]]
    ) -> Iterator[Row]:
        unnamed = 0
        # The records of one request share their session (mostly) and serverTimestamp.
        last_session, last_key = "", 0
        last_text: Any = None
        last_arrival = 0
        for name, opener in sources:
            self.sources += 1
            day = day_of_key(name, raw_prefix)
            if day is None:
                continue
            with opener() as stream:
                for _line, record, _raw in iter_json_objects(stream, name):
                    if type(record) is not dict:
                        self.bad_lines += type(record) is BadLine
                        continue
                    session = record.get("sessionId")
                    if type(session) is not str:
                        continue
                    if session != last_session or not last_key:
                        last_session, last_key = session, session_key(session)
                        names.append((last_key, session))
                    event_id = record.get("eventId")
                    if event_id is None:  # another sender's record: it is its own event
                        unnamed += 1
                        event_id = f"\x00unnamed:{unnamed}"
                    elif type(event_id) is not str:  # 42 and "42" are different ids
                        event_id = f"\x00{type(event_id).__name__}:{event_id}"
                    text = record.get("serverTimestamp")
                    if text != last_text:
                        last_text, last_arrival = text, arrival_number(text)
                    seq = record.get("seq")
                    browser = _text(record.get("uaBrowser"))
                    device = _text(record.get("uaDeviceType"))
                    yield (
                        last_key,
                        seq if type(seq) is int and 1 <= seq <= MAX_SEQ else None,
                        hash(event_id),
                        last_arrival,
                        day,
                        self._slice(browser, device),
                    )

    def _slice(self, browser: str, device: str) -> int:
        pair = (browser, device)
        number = self._slices.get(pair)
        if number is None:
            if len(self._slices) >= MAX_SLICES:
                pair = OTHER_SLICE
            number = self._slices.setdefault(pair, len(self._slices))
        return number

    def slice_names(self) -> list[tuple[str, str]]:
        """(browser, device type) by slice number."""
        return sorted(self._slices, key=self._slices.__getitem__)

    def ordered(self) -> Iterator[Row]:
        """The rows by session, then number (those without one first), the copies of an
        event next to each other, its first arrival first."""
        cursor = self._db.execute("SELECT * FROM r ORDER BY session, seq, ekey, arrived")
        return iter(cursor)

    def names(self, keys: Iterable[int]) -> dict[int, str]:
        """The session ids of these session keys."""
        found: dict[int, str] = {}
        for key in set(keys):
            row = self._db.execute("SELECT name FROM names WHERE session = ?", (key,)).fetchone()
            found[key] = row[0] if row else ""
        return found
