"""A day (or range) of raw events and rejects → the numbers a report shows, in bounded memory.

The events are read as ``export`` reads them: the same reader
(``chalicelib.csv.read.iter_json_objects``: gzip or plain, NDJSON or concatenated,
bad lines counted) and the same dedupe (``chalicelib.csv.dedupe``: one row per
(``sessionId``, ``eventId``), the first kept, fingerprints spilled to disk). Three
passes, none holding the events:

1. every source is read once; each record becomes a short row of the fields the
   report counts, written to a spool on disk, and its dedupe key is fingerprinted;
2. the spool is read back in order, the duplicates the dedupe names are skipped, and
   the per-event counts are made (bounded counters); each kept row with a
   ``sessionId`` goes to one of ``SESSION_PARTITIONS`` files chosen by the session;
3. each partition is read on its own (a session's events are all in one): sessions
   per hour, sessions by landing referrer and UTM source, and the delivery rate.

Memory is bounded by the counters (``MAX_DISTINCT`` values per field) and by one
partition's sessions, never by the number of events.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, BinaryIO

import orjson

from chalicelib.csv.dedupe import ROW_BITS, Fingerprints, fingerprint
from chalicelib.csv.read import exact_numbers, iter_json_objects
from chalicelib.reject_summary import RejectSummary, iter_records
from chalicelib.storage import ObjectStore
from exporter.report.counting import LABEL_CHARS, NONE, Buckets, CappedCounter, label
from exporter.report.delivery import Delivery, delivery_of

# Fields counted per event (the chart shows events) and per session (landing fields).
EVENT_FIELDS = ("pagePath", "uaBrowser", "uaOs", "uaDeviceType", "country")
SESSION_FIELDS = ("referrer", "utm_source")
# A spool row: bucket, metricName, sessionId, then these as labels, isBot, seq.
ROW_FIELDS = (*EVENT_FIELDS, "botReason", *SESSION_FIELDS)
SESSION_PARTITIONS = 256
_ROWS_PER_WRITE = 4096
_PARTITION_BUFFER = 256
# (bucket, metricName) pairs counted for the stacked chart; more fall into "other".
MAX_METRIC_BUCKETS = 100_000


@dataclass
class ReportData:
    """Everything a report shows; all of it is small."""

    days: tuple[date, ...]
    source: str = ""
    raw_objects: int = 0
    reject_objects: int = 0
    events: int = 0
    duplicates: int = 0
    bad_lines: int = 0
    per_bucket: list[int] = field(default_factory=list)
    metrics: CappedCounter = field(default_factory=CappedCounter)
    metric_per_bucket: dict[tuple[int, str], int] = field(default_factory=dict)
    sessions: int = 0
    sessions_per_bucket: list[int] = field(default_factory=list)
    by_field: dict[str, CappedCounter] = field(default_factory=dict)
    bots: int = 0
    bot_reasons: CappedCounter = field(default_factory=CappedCounter)
    rejects: RejectSummary = field(default_factory=RejectSummary)
    delivery: Delivery | None = None

    def __post_init__(self) -> None:
        self.buckets = Buckets(self.days)
        self.per_bucket = self.per_bucket or [0] * len(self.buckets)
        self.sessions_per_bucket = self.sessions_per_bucket or [0] * len(self.buckets)
        for name in (*EVENT_FIELDS, *SESSION_FIELDS):
            self.by_field.setdefault(name, CappedCounter())

    @property
    def has_bot_reason(self) -> bool:
        """Do the records carry ``botReason``? (Only then has the bot chart a breakdown.)"""
        return any(reason != NONE for reason in self.bot_reasons.counts)

    def reject_reasons(self) -> CappedCounter:
        by_reason = CappedCounter()
        for (reason, _metric), count in self.rejects.groups.items():
            by_reason.add(label(reason), count)
        return by_reason


def _row(record: dict[str, Any], bucket: int) -> list[Any]:
    """What pass 2 counts of one record, in the spool's order."""
    get = record.get
    # The usual value is short text: taken as it is, without a call per field.
    row = [bucket, get("metricName"), get("sessionId")]
    for name in ROW_FIELDS:
        value = get(name)
        row.append(value if type(value) is str and 0 < len(value) <= LABEL_CHARS else label(value))
    row[1] = label(row[1])
    row.append(get("isBot") is True)
    value = get("seq")
    row.append(value if type(value) is int and value > 0 else 0)
    return row


def _dumps(row: list[Any]) -> bytes:
    try:
        return orjson.dumps(row)
    except orjson.JSONEncodeError:  # a lone surrogate: kept as its escape
        return orjson.dumps(
            [v.encode("utf-8", "backslashreplace").decode() if type(v) is str else v for v in row]
        )


class _EventSpool:
    """Pass 1: rows in a file, in row order, and the dedupe index of their keys."""

    def __init__(self, work: str, buckets: Buckets) -> None:
        self.path = os.path.join(work, "rows.jsonl")
        self._handle: IO[bytes] = open(self.path, "wb")
        self._work = work
        self._buckets = buckets
        self._day_index = buckets.day_index()
        self.fingerprints = Fingerprints(work)
        self.sources = 0
        self.bad_lines = 0

    def add_source(self, name: str, stream: BinaryIO) -> None:
        index = self.sources
        self.sources += 1
        # A per-source compact index, handed to the file's, exactly as export does.
        ids_dir = tempfile.mkdtemp(prefix=f"ids-{index}-", dir=self._work)
        ids = Fingerprints(ids_dir, compact=True)
        base = index << ROW_BITS
        of_time, day_index = self._buckets.of_time, self._day_index
        default_bucket = self._buckets.of_key(name)
        pending: list[bytes] = []
        row = 0
        for _line_number, value, line in iter_json_objects(stream, name):
            if type(value) is not dict:
                self.bad_lines += 1
                continue
            session_id, event_id = value.get("sessionId"), value.get("eventId")
            if line is not None and (type(session_id) is float or type(event_id) is float):
                value = exact_numbers(line)  # an id beyond 64 bits, read exactly as export does
                session_id, event_id = value.get("sessionId"), value.get("eventId")
            if event_id is not None and event_id != "":
                ids.add(fingerprint(session_id, event_id), base | row)
            bucket = of_time(value.get("serverTimestamp"), day_index, default_bucket)
            pending.append(_dumps(_row(value, bucket)))
            row += 1
            if len(pending) == _ROWS_PER_WRITE:
                self._write(pending)
        self._write(pending)
        self.fingerprints.add_source(*ids.finish_source())
        shutil.rmtree(ids_dir, ignore_errors=True)

    def _write(self, rows: list[bytes]) -> None:
        if rows:
            self._handle.write(b"\n".join(rows) + b"\n")
            rows.clear()

    def close(self) -> None:
        self._handle.close()

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """``(row id, row)`` in row order (row ids as the dedupe numbers them)."""
        with open(self.path, "rb") as handle:
            source, row = 0, 0
            for line in handle:
                if line == b"\x00\n":
                    source, row = source + 1, 0
                    continue
                yield (source << ROW_BITS) | row, orjson.loads(line)
                row += 1

    def end_source(self) -> None:
        """A marker line between sources: row ids restart per source."""
        self._handle.write(b"\x00\n")


class _SessionPartitions:
    """Pass 2's per-session rows, in files chosen by the session (row order kept)."""

    def __init__(self, work: str) -> None:
        self._paths = [os.path.join(work, f"sessions-{n}.jsonl") for n in range(SESSION_PARTITIONS)]
        self._pending: list[list[bytes]] = [[] for _ in range(SESSION_PARTITIONS)]

    def add(self, session: str, row: list[Any]) -> None:
        partition = hash(session) % SESSION_PARTITIONS
        pending = self._pending[partition]
        pending.append(_dumps([session, *row]))
        if len(pending) >= _PARTITION_BUFFER:
            self._flush(partition)

    def _flush(self, partition: int) -> None:
        with open(self._paths[partition], "ab") as handle:
            handle.write(b"\n".join(self._pending[partition]) + b"\n")
        self._pending[partition] = []

    def partitions(self) -> Iterator[Iterator[list[Any]]]:
        for partition in range(SESSION_PARTITIONS):
            if self._pending[partition]:
                self._flush(partition)
            if os.path.exists(self._paths[partition]):
                yield self._read(self._paths[partition])

    @staticmethod
    def _read(path: str) -> Iterator[list[Any]]:
        with open(path, "rb") as handle:
            for line in handle:
                yield orjson.loads(line)
        os.unlink(path)


def _count_events(data: ReportData, spool: _EventSpool, sessions: _SessionPartitions) -> None:
    """Pass 2: every kept row counted; its session's fields sent to the partitions."""
    drops = spool.fingerprints.drops()
    next_drop = next(drops, -1)
    per_bucket, metrics, pairs = data.per_bucket, data.metrics, data.metric_per_bucket
    counters = [data.by_field[name] for name in EVENT_FIELDS]
    for row_id, row in spool.rows():
        if row_id == next_drop:
            data.duplicates += 1
            next_drop = next(drops, -1)
            continue
        bucket, metric, session, *values, bot, seq = row
        data.events += 1
        per_bucket[bucket] += 1
        metrics.add(metric)
        pair = (bucket, metric)
        if pair in pairs or len(pairs) < MAX_METRIC_BUCKETS:
            pairs[pair] = pairs.get(pair, 0) + 1
        for counter, value in zip(counters, values, strict=False):
            counter.add(value)
        bot_reason, referrer, utm_source = values[len(EVENT_FIELDS) :]
        if bot:
            data.bots += 1
            data.bot_reasons.add(bot_reason)
        if type(session) is str and session:
            sessions.add(session, [bucket, referrer, utm_source, seq])


def _count_sessions(
    data: ReportData, sessions: _SessionPartitions
) -> Iterator[tuple[int, int, int]]:
    """Pass 3, one partition at a time: counts every session's hours and landing fields
    into ``data`` and yields ``(lowest seq, highest seq, events with seq)`` of each
    session that carries ``seq``, for ``delivery_of`` (which keeps only sums)."""
    referrers, utm_sources = (data.by_field[name] for name in SESSION_FIELDS)
    per_bucket = data.sessions_per_bucket
    for rows in sessions.partitions():
        # session → [bucket bits, referrer, utm_source, lowest seq, highest seq, with seq]
        seen: dict[str, list[Any]] = {}
        for session, bucket, referrer, utm_source, seq in rows:
            state = seen.get(session)
            if state is None:
                state = seen[session] = [0, referrer, utm_source, 0, 0, 0]
            state[0] |= 1 << bucket
            if state[1] == NONE:
                state[1] = referrer
            if state[2] == NONE:
                state[2] = utm_source
            if seq:
                state[3] = min(state[3], seq) if state[5] else seq
                state[4] = max(state[4], seq)
                state[5] += 1
        for bits, referrer, utm_source, low, high, with_seq in seen.values():
            data.sessions += 1
            referrers.add(referrer)
            utm_sources.add(utm_source)
            while bits:
                lowest = bits & -bits
                per_bucket[lowest.bit_length() - 1] += 1
                bits ^= lowest
            if with_seq:
                yield low, high, with_seq


def count_range(
    store: ObjectStore,
    raw_keys: Iterable[str],
    reject_keys: Iterable[str],
    days: Iterable[date],
    *,
    on_source_done: Callable[[str], None] | None = None,
) -> ReportData:
    """Read the raw objects at ``raw_keys`` and the rejects at ``reject_keys`` of ``store``."""
    data = ReportData(tuple(days))
    with tempfile.TemporaryDirectory(prefix=f"report-{os.getpid()}-") as work:
        spool = _EventSpool(work, data.buckets)
        try:
            for key in raw_keys:
                with store.open_read(key) as stream:
                    spool.add_source(key, stream)
                spool.end_source()
                if on_source_done is not None:
                    on_source_done(key)
        finally:
            spool.close()
        data.raw_objects, data.bad_lines = spool.sources, spool.bad_lines
        sessions = _SessionPartitions(work)
        _count_events(data, spool, sessions)
        os.unlink(spool.path)
        data.delivery = delivery_of(_count_sessions(data, sessions))
    for key in reject_keys:
        data.reject_objects += 1
        for record in iter_records(store, [key], data.rejects.add_bad_line):
            data.rejects.add(record)
        if on_source_done is not None:
            on_source_done(key)
    return data
