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
database (``delivery.records``), and one ordered pass over it keeps a few counters per
session and per slice.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from chalicelib.csv.convert import Source
from chalicelib.delivery.records import RecordSpool
from chalicelib.jobs import sources_for
from chalicelib.layout import day_prefix, keys_for_days, raw_keys
from chalicelib.storage.base import ObjectStore

# Gap runs listed per day (the counts cover all of them).
MAX_LISTED_GAP_RUNS = 100


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
    """One UTC day: its counts, by browser and by device type, and its gap runs (at most
    ``MAX_LISTED_GAP_RUNS``, sorted by session id; ``gap_runs_total`` counts all)."""

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
    if not days:
        raise ValueError("measure_delivery needs at least one day")
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
        spool = RecordSpool(Path(folder))
        try:
            spool.load(sources, raw_prefix)
            report.sources, report.bad_lines = spool.sources, spool.bad_lines
            _tally(spool, report)
        finally:
            spool.close()
    for day in report.days:
        report.total.add(day.total)
    return report


class _Session:
    """One session's counters, fed its events in number order."""

    def __init__(self, key: int, day: int, slice_number: int) -> None:
        self.key = key
        self.day = day
        self.slice = slice_number
        self.counts = DeliveryCounts()
        self.top = 0  # highest number seen
        self.distinct = 0
        # The latest arrival so far (at the end: the final send's), the highest number
        # that arrived before it, and the size of the missing run above that number (None
        # until a number that came with the latest arrival is seen above it).
        self.latest = 0
        self.before_final = 0
        self.end_run: int | None = None
        self.runs: list[tuple[int, int]] = []  # the first few missing runs, to list
        self.run_count = 0

    def add(self, seq: int | None, arrived: int) -> None:
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


def _tally(spool: RecordSpool, report: DeliveryReport) -> None:
    by_ordinal = {day.day.toordinal(): day for day in report.days}
    slices = spool.slice_names()
    # Gap runs to list, per day, with their session's key (named once the pass is done).
    listed: dict[int, list[tuple[int, int, int, bool]]] = {number: [] for number in by_ordinal}
    current: _Session | None = None
    event: tuple[int | None, int] | None = None

    def close(session: _Session) -> None:
        day = by_ordinal.get(session.day)
        if day is None:
            return  # first seen in an hour of context: another day's session
        counts = session.finish()
        browser, device = slices[session.slice]
        day.total.add(counts)
        day.by_browser.setdefault(browser, DeliveryCounts()).add(counts)
        day.by_device_type.setdefault(device, DeliveryCounts()).add(counts)
        day.gap_runs_total += session.run_count
        runs = listed[session.day]
        for first, last in session.runs[: MAX_LISTED_GAP_RUNS - len(runs)]:
            runs.append((session.key, first, last, first == session.before_final + 1))

    for key, seq, event_key, arrived, day_number, slice_number in spool.ordered():
        if current is None or current.key != key:
            if current is not None:
                close(current)
            current = _Session(key, day_number, slice_number)
            event = None
        # The session's first day, and (browser, device type): the first seen of its records'.
        current.day = min(current.day, day_number)
        current.slice = min(current.slice, slice_number)
        if event == (seq, event_key):
            current.counts.duplicates += 1
            continue
        event = (seq, event_key)
        current.add(seq, arrived)
    if current is not None:
        close(current)
    names = spool.names(run[0] for runs in listed.values() for run in runs)
    for number, runs in listed.items():
        gap_runs = [GapRun(names[key], first, last, at_end) for key, first, last, at_end in runs]
        by_ordinal[number].gap_runs = sorted(gap_runs, key=lambda run: (run.session_id, run.first))
