"""Delivery measured per day: of the events browsers numbered, how many arrived, and where
the rest went missing.

The browser client numbers each page load's events (``seq``: 1, 2, 3, … per
``sessionId``). From the raw records, deduplicated by (``sessionId``, ``eventId``), a
session's *gaps* are the numbers missing between 1 and the highest one that arrived,
and the day's delivery rate is ``received / (received + gaps)``.

Where a gap sits: a session's *final send* is what arrived with its latest
``serverTimestamp`` (normally the page-exit send). The run of numbers missing between
the highest number that arrived before the final send (or 0) and the final send's
lowest is *at the end*: what a send in flight when the page went away, or an earlier
part of the exit, lost. Every other run is *inside*, a number missing between numbers
that did arrive (the client sends its queue oldest first). A session whose final send
is lost entirely shows no gap at all: no count of gaps can see that (docs/SPEC.md,
"Delivery").

A session belongs to the UTC day its first record arrived (the raw layout's day). To
keep a page load that straddles midnight whole, the hour before the range and the hour
after it are read too; sessions first seen there belong to the neighbouring days.

Memory stays flat in the number of events: the records go into an on-disk SQLite
database (a bounded page cache, sorting spilled to temporary files), and one ordered
pass over it keeps a few counters per session and per slice.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from chalicelib.csv.convert import Source
from chalicelib.csv.dedupe import fingerprint
from chalicelib.csv.read import BadLine, iter_json_objects
from chalicelib.jobs import day_prefix, keys_for_days, raw_keys, sources_for
from chalicelib.storage import ObjectStore

# Gap runs listed per day (the counts cover all of them).
MAX_LISTED_GAP_RUNS = 100
# Numbers above this are not a counter's (the client's starts at 1 per page load):
# such an event counts as unnumbered rather than as 2**53 gaps.
MAX_SEQ = 2**53
_CACHE_KIB = 4 * 1024


@dataclass
class DeliveryCounts:
    """Counts for a day, or for one browser or device type of a day."""

    sessions: int = 0
    received: int = 0
    gaps: int = 0
    gaps_inside: int = 0
    gaps_at_end: int = 0
    duplicates: int = 0
    unnumbered: int = 0
    sessions_with_gaps: int = 0
    sessions_with_end_gaps: int = 0

    @property
    def rate(self) -> float | None:
        """received / (received + gaps); None when nothing numbered arrived."""
        expected = self.received + self.gaps
        return self.received / expected if expected else None

    def add(self, other: DeliveryCounts) -> None:
        for name in _COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        rate = self.rate
        return {
            "sessions": self.sessions,
            "received": self.received,
            "gaps": self.gaps,
            "gapsInside": self.gaps_inside,
            "gapsAtEnd": self.gaps_at_end,
            "duplicates": self.duplicates,
            "unnumbered": self.unnumbered,
            "sessionsWithGaps": self.sessions_with_gaps,
            "sessionsWithEndGaps": self.sessions_with_end_gaps,
            "rate": None if rate is None else round(rate, 6),
        }


_COUNT_FIELDS = (
    "sessions",
    "received",
    "gaps",
    "gaps_inside",
    "gaps_at_end",
    "duplicates",
    "unnumbered",
    "sessions_with_gaps",
    "sessions_with_end_gaps",
)


@dataclass(frozen=True)
class GapRun:
    """Numbers ``first`` to ``last`` of a session never arrived."""

    session_id: str
    first: int
    last: int
    at_end: bool

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessionId": self.session_id,
            "first": self.first,
            "last": self.last,
            "where": "end" if self.at_end else "inside",
        }


@dataclass
class DayDelivery:
    """One UTC day: its counts, by browser and by device type, and its gap runs (the
    first ``MAX_LISTED_GAP_RUNS`` in session id order; ``gap_runs_total`` counts all)."""

    day: date
    total: DeliveryCounts = field(default_factory=DeliveryCounts)
    by_browser: dict[str, DeliveryCounts] = field(default_factory=dict)
    by_device_type: dict[str, DeliveryCounts] = field(default_factory=dict)
    gap_runs: list[GapRun] = field(default_factory=list)
    gap_runs_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            **self.total.as_dict(),
            "byBrowser": _slices(self.by_browser),
            "byDeviceType": _slices(self.by_device_type),
            "gapRuns": [run.as_dict() for run in self.gap_runs],
            "gapRunsTotal": self.gap_runs_total,
        }

    def log_record(self) -> dict[str, Any]:
        """The day's counts as one flat log line (a CloudWatch metric filter reads
        ``$.rate``; it is absent, not null, when nothing numbered arrived)."""
        counts = self.total.as_dict()
        if counts["rate"] is None:
            del counts["rate"]
        return {"event": "delivery", "date": self.day.isoformat(), **counts}


def _slices(slices: dict[str, DeliveryCounts]) -> dict[str, dict[str, Any]]:
    return {name: slices[name].as_dict() for name in sorted(slices)}


@dataclass
class DeliveryReport:
    """Days of a range, their sum, and what was read."""

    days: list[DayDelivery]
    total: DeliveryCounts = field(default_factory=DeliveryCounts)
    sources: int = 0
    bad_lines: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The range's counts at the top (``sessions``, ``received``, ``gaps``,
        ``duplicates``, ``rate``, …), then each day's."""
        return {
            "from": self.days[0].day.isoformat() if self.days else None,
            "to": self.days[-1].day.isoformat() if self.days else None,
            **self.total.as_dict(),
            "sources": self.sources,
            "badLines": self.bad_lines,
            "days": [day.as_dict() for day in self.days],
        }


def measure_delivery(
    store: ObjectStore, days: list[date], settings: Settings | None = None
) -> DeliveryReport:
    """The delivery report of ``days`` (consecutive UTC days) from the raw objects of
    ``store`` (``settings.raw_prefix``), with an hour of context either side."""
    raw_prefix = (settings or Settings()).raw_prefix
    keys = [
        *raw_keys(store, day_prefix(raw_prefix, days[0] - timedelta(days=1)) + "23/"),
        *keys_for_days(store, raw_prefix, days),
        *raw_keys(store, day_prefix(raw_prefix, days[-1] + timedelta(days=1)) + "00/"),
    ]
    return delivery_from_sources(sources_for(store, keys), days, raw_prefix)


def delivery_from_sources(
    sources: Iterable[Source], days: list[date], raw_prefix: str = "raw/"
) -> DeliveryReport:
    """The report of ``days`` from raw ``sources`` named by their keys (the key's
    ``raw/YYYY/MM/DD/`` says the day its records arrived)."""
    report = DeliveryReport(days=[DayDelivery(day) for day in days])
    with tempfile.TemporaryDirectory(prefix="delivery-") as folder:
        database = _open_database(Path(folder))
        try:
            database.executemany(
                "INSERT INTO r VALUES (?, ?, ?, ?, ?, ?, ?)",
                _rows(sources, raw_prefix, report),
            )
            _tally(database, report)
        finally:
            database.close()
    for day in report.days:
        report.total.add(day.total)
    return report


def _open_database(folder: Path) -> sqlite3.Connection:
    database = sqlite3.connect(folder / "delivery.sqlite3", isolation_level=None)
    for pragma in (
        "journal_mode = OFF",
        "synchronous = OFF",
        "temp_store = FILE",
        f"cache_size = -{_CACHE_KIB}",
    ):
        database.execute(f"PRAGMA {pragma}")
    database.execute(
        "CREATE TABLE r (session TEXT NOT NULL, seq INTEGER, ekey INTEGER NOT NULL, "
        "arrived TEXT NOT NULL, day INTEGER NOT NULL, browser TEXT NOT NULL, "
        "device TEXT NOT NULL)"
    )
    database.execute("BEGIN")
    return database


def _day_of_key(key: str, raw_prefix: str) -> int | None:
    """``raw/YYYY/MM/DD/…`` → the day's ordinal, or None for a key of another layout."""
    relative = key[len(raw_prefix) :] if key.startswith(raw_prefix) else key
    try:
        return date(int(relative[0:4]), int(relative[5:7]), int(relative[8:10])).toordinal()
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value if type(value) is str else ""


def _rows(
    sources: Iterable[Source], raw_prefix: str, report: DeliveryReport
) -> Iterator[tuple[str, int | None, int, str, int, str, str]]:
    """One row per stored record that has a session: (session, seq or None, event key,
    arrival, day, browser, device type). The event key is the event id's hash: this
    process's own (salted), so 64 bits that only this run compares."""
    unnamed = 0
    for name, opener in sources:
        report.sources += 1
        day = _day_of_key(name, raw_prefix)
        if day is None:
            continue
        with opener() as stream:
            for _line, record, _raw in iter_json_objects(stream, name):
                if type(record) is not dict:
                    report.bad_lines += type(record) is BadLine
                    continue
                session = record.get("sessionId")
                if type(session) is not str:
                    continue
                event_id = record.get("eventId")
                if event_id is None:  # another sender's record: it is its own event
                    unnamed += 1
                    event_id = f"\x00unnamed:{unnamed}"
                if type(event_id) is str:
                    key = hash(event_id)
                else:  # a number, or anything a raw line from elsewhere holds
                    key = int.from_bytes(fingerprint(session, event_id)[:8], "big", signed=True)
                seq = record.get("seq")
                yield (
                    session,
                    seq if type(seq) is int and 1 <= seq <= MAX_SEQ else None,
                    key,
                    _text(record.get("serverTimestamp")),
                    day,
                    _text(record.get("uaBrowser")),
                    _text(record.get("uaDeviceType")),
                )


# One sort: a session's records in number order (those without one first), the copies
# of an event next to each other, its first arrival first.
_RECORDS_IN_ORDER = "SELECT * FROM r ORDER BY session, seq, ekey, arrived"


class _Session:
    """One session's counters, fed its events in number order."""

    def __init__(self, session: str, day: int, browser: str, device: str) -> None:
        self.session = session
        self.day = day
        self.browser = browser
        self.device = device
        self.counts = DeliveryCounts(sessions=0)
        self.top = 0  # highest number seen
        self.distinct = 0
        # The latest arrival so far (at the end: the final send's), the highest number
        # that arrived before it, and the size of the missing run above that number (None
        # until a number that came with the latest arrival is seen above it).
        self.latest = ""
        self.before_final = 0
        self.end_run: int | None = None
        self.runs: list[tuple[int, int]] = []  # the first few missing runs, to list
        self.run_count = 0

    def add(self, seq: int | None, arrived: str) -> None:
        """One event (its first copy), in number order."""
        if seq is None:
            self.counts.unnumbered += 1
            return
        self.counts.received += 1
        if seq == self.top and self.distinct:
            return  # another event with the same number: received, no new number
        if seq > self.top + 1:
            self.run_count += 1
            if len(self.runs) < MAX_LISTED_GAP_RUNS:
                self.runs.append((self.top + 1, seq - 1))
        if arrived > self.latest or not self.distinct:
            # A later send: every number before this one arrived before it.
            self.latest = arrived
            self.before_final = self.top
            self.end_run = seq - self.top - 1
        elif arrived < self.latest:
            self.before_final = seq
            self.end_run = None
        elif self.end_run is None:
            self.end_run = seq - self.before_final - 1
        self.top = seq
        self.distinct += 1

    def finish(self) -> DeliveryCounts:
        counts = self.counts
        if counts.received:
            counts.sessions = 1
            counts.gaps = self.top - self.distinct
            counts.gaps_at_end = self.end_run or 0
            counts.gaps_inside = counts.gaps - counts.gaps_at_end
            counts.sessions_with_gaps = int(counts.gaps > 0)
            counts.sessions_with_end_gaps = int(counts.gaps_at_end > 0)
        return counts

    def gap_runs(self) -> list[GapRun]:
        return [
            GapRun(self.session, first, last, at_end=first == self.before_final + 1)
            for first, last in self.runs
        ]


def _tally(database: sqlite3.Connection, report: DeliveryReport) -> None:
    database.execute("COMMIT")
    by_ordinal = {day.day.toordinal(): day for day in report.days}
    current: _Session | None = None
    event: tuple[int | None, int] | None = None
    for session, seq, key, arrived, day, browser, device in database.execute(_RECORDS_IN_ORDER):
        if current is None or current.session != session:
            if current is not None:
                _close(current, by_ordinal)
            current = _Session(session, day, browser, device)
            event = None
        # The session's first day, browser and device type: the least of its records'.
        current.day = min(current.day, day)
        current.browser = min(current.browser, browser)
        current.device = min(current.device, device)
        if event == (seq, key):
            current.counts.duplicates += 1
            continue
        event = (seq, key)
        current.add(seq, arrived)
    if current is not None:
        _close(current, by_ordinal)


def _close(session: _Session, by_ordinal: dict[int, DayDelivery]) -> None:
    day = by_ordinal.get(session.day)
    if day is None:
        return  # first seen in an hour of context: another day's session
    counts = session.finish()
    day.total.add(counts)
    day.by_browser.setdefault(session.browser, DeliveryCounts()).add(counts)
    day.by_device_type.setdefault(session.device, DeliveryCounts()).add(counts)
    day.gap_runs_total += session.run_count
    room = MAX_LISTED_GAP_RUNS - len(day.gap_runs)
    if room > 0:
        day.gap_runs.extend(session.gap_runs()[:room])
