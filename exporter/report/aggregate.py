"""A day (or range) of raw events and rejects → the numbers a report shows, in bounded memory.

The events are read as ``export`` reads them: the same reader
(``chalicelib.csv.read.iter_json_objects``: gzip or plain, NDJSON or concatenated,
bad lines counted) and the same dedupe (``chalicelib.csv.dedupe``: one row per
(``sessionId``, ``eventId``), the first kept, fingerprints spilled to disk). Three
passes, none holding the events:

1. every source is read once (in worker processes when ``jobs`` > 1); each record
   becomes a short row of the fields the report counts, written to the source's
   spool on disk, and its dedupe key is fingerprinted;
2. the spool is read back in order, the duplicates the dedupe names are skipped, and
   the per-event counts are made (bounded counters); each kept row with a
   ``sessionId`` goes to one of ``SESSION_PARTITIONS`` files chosen by the session;
3. each partition is read on its own (a session's events are all in one): sessions
   per hour, sessions by landing referrer and UTM source, and the delivery rate.

Memory is bounded by the counters (``MAX_DISTINCT`` values per field) and by one
partition's sessions, never by the number of events.
"""

from __future__ import annotations

import marshal
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, BinaryIO

from chalicelib.csv.dedupe import ROW_BITS, Fingerprints, fingerprint
from chalicelib.csv.read import exact_numbers, iter_json_objects
from chalicelib.rejects.summary import RejectSummary, iter_records
from chalicelib.storage.base import ObjectStore
from chalicelib.workers import results_in_order
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
        self.per_bucket = self.per_bucket or [0] * len(self.buckets)
        self.sessions_per_bucket = self.sessions_per_bucket or [0] * len(self.buckets)
        for name in (*EVENT_FIELDS, *SESSION_FIELDS):
            self.by_field.setdefault(name, CappedCounter())

    @property
    def buckets(self) -> Buckets:
        return Buckets(self.days)

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
    """What pass 2 counts of one record: bucket, metricName, sessionId, the ROW_FIELDS
    as labels, isBot, seq (0 unless a positive integer)."""
    get = record.get
    seq = get("seq")
    return [
        bucket,
        label(get("metricName")),
        get("sessionId"),
        # The usual value is short text, taken as it is (no call per field).
        *[
            value if type(value) is str and 0 < len(value) <= LABEL_CHARS else label(value)
            for value in map(get, ROW_FIELDS)
        ],
        get("isBot") is True,
        seq if type(seq) is int and seq > 0 else 0,
    ]


def _write_chunk(handle: BinaryIO, chunk: list[Any]) -> None:
    """One list, length-prefixed: ``marshal.loads`` of whole bytes is many times faster
    than ``marshal.load`` from a file, which reads item by item."""
    data = marshal.dumps(chunk)
    handle.write(len(data).to_bytes(8, "little") + data)


def _read_chunks(path: str) -> Iterator[list[Any]]:
    """The lists ``_write_chunk`` wrote to ``path``, one after another; then the file is
    gone. The spools are this process's own temporary files, so marshal (the fastest
    way to store Python values, lone surrogates included) is safe to read back."""
    with open(path, "rb") as handle:
        while size := handle.read(8):
            yield marshal.loads(handle.read(int.from_bytes(size, "little")))
    os.unlink(path)


@dataclass
class _SpooledSource:
    """Pass 1's result for one source: its rows' file and its dedupe index."""

    index: int
    name: str
    rows_path: str
    bad_lines: int
    firsts: list[bytes]
    drop_paths: list[str]


def _spool_source(
    index: int, name: str, store: ObjectStore, work: str, days: tuple[date, ...]
) -> _SpooledSource:
    """Pass 1 for one source (in a worker process when ``jobs`` > 1): its records as
    rows in a file, and a compact dedupe index handed to the file's, as export does."""
    buckets = Buckets(days)
    of_time, day_index = buckets.of_time, buckets.day_index()
    default_bucket = buckets.of_key(name)
    ids = Fingerprints(tempfile.mkdtemp(prefix=f"ids-{index}-", dir=work), compact=True)
    base = index << ROW_BITS
    rows_path = os.path.join(work, f"rows-{index}.marshal")
    pending: list[list[Any]] = []
    row = bad_lines = 0
    with open(rows_path, "wb") as spool, store.open_read(name) as stream:
        for _line_number, value, line in iter_json_objects(stream, name):
            if type(value) is not dict:
                bad_lines += 1
                continue
            session_id, event_id = value.get("sessionId"), value.get("eventId")
            if line is not None and (type(session_id) is float or type(event_id) is float):
                value = exact_numbers(line)  # an id beyond 64 bits, read exactly as export does
                session_id, event_id = value.get("sessionId"), value.get("eventId")
            if event_id is not None and event_id != "":
                ids.add(fingerprint(session_id, event_id), base | row)
            bucket = of_time(value.get("serverTimestamp"), day_index, default_bucket)
            pending.append(_row(value, bucket))
            row += 1
            if len(pending) == _ROWS_PER_WRITE:
                _write_chunk(spool, pending)
                pending = []
        if pending:
            _write_chunk(spool, pending)
    firsts, drop_paths = ids.finish_source()
    return _SpooledSource(index, name, rows_path, bad_lines, firsts, drop_paths)


def _spool_all(
    store: ObjectStore, keys: list[str], work: str, days: tuple[date, ...], jobs: int
) -> Iterator[_SpooledSource]:
    """Pass 1 over every source, in order; in ``jobs`` worker processes when > 1."""
    # Workers that end with the parent, as export's (chalicelib.workers).
    yield from results_in_order(
        jobs, _spool_source, ((index, key, store, work, days) for index, key in enumerate(keys))
    )


def _spooled_chunks(spooled: list[_SpooledSource]) -> Iterator[tuple[int, list[list[Any]]]]:
    """``(row id of the first row, rows)`` of every source in row order (row ids as the
    dedupe numbers them), a spool chunk at a time."""
    for source in spooled:
        row_id = source.index << ROW_BITS
        for chunk in _read_chunks(source.rows_path):
            yield row_id, chunk
            row_id += len(chunk)


class _SessionPartitions:
    """Pass 2's per-session rows, in files chosen by the session (row order kept)."""

    def __init__(self, work: str) -> None:
        self._paths = [
            os.path.join(work, f"sessions-{n}.marshal") for n in range(SESSION_PARTITIONS)
        ]
        self._pending: list[list[tuple[Any, ...]]] = [[] for _ in range(SESSION_PARTITIONS)]

    def add(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """``(sessionId, …)`` rows; those without a text sessionId have no session."""
        pending = self._pending
        for row in rows:
            session = row[0]
            if type(session) is str and session:
                partition = hash(session) % SESSION_PARTITIONS
                pending[partition].append(row)
                if len(pending[partition]) >= _PARTITION_BUFFER:
                    self._flush(partition)

    def _flush(self, partition: int) -> None:
        with open(self._paths[partition], "ab") as handle:
            _write_chunk(handle, self._pending[partition])
        self._pending[partition] = []

    def partitions(self) -> Iterator[Iterator[tuple[Any, ...]]]:
        """Each partition's rows in row order: those on disk, then those still held."""
        for partition in range(SESSION_PARTITIONS):
            yield self._rows(partition)

    def _rows(self, partition: int) -> Iterator[tuple[Any, ...]]:
        if os.path.exists(self._paths[partition]):
            for chunk in _read_chunks(self._paths[partition]):
                yield from chunk
        yield from self._pending[partition]
        self._pending[partition] = []


def _without_drops(
    first: int, chunk: list[list[Any]], drops: Iterator[int], pending: list[int]
) -> tuple[list[list[Any]], int]:
    """The chunk's rows less the duplicates (``pending[0]`` is the next duplicate's row
    id, consumed as passed), and how many were left out."""
    end = first + len(chunk)
    if pending[0] >= end or pending[0] < 0:
        return chunk, 0
    dropped: set[int] = set()
    while 0 <= pending[0] < end:
        dropped.add(pending[0] - first)
        pending[0] = next(drops, -1)
    return [row for index, row in enumerate(chunk) if index not in dropped], len(dropped)


def _add_counts(counter: CappedCounter, counts: Counter[Any]) -> None:
    for key, count in counts.items():
        counter.add(key, count)


def _count_events(
    data: ReportData,
    chunks: Iterable[tuple[int, list[list[Any]]]],
    drops: Iterator[int],
    sessions: _SessionPartitions,
) -> None:
    """Pass 2, a chunk at a time: the duplicates left out, every field of the rest
    counted by ``Counter`` (in C), their session fields sent to the partitions."""
    pending = [next(drops, -1)]
    per_bucket, pairs = data.per_bucket, data.metric_per_bucket
    for first, chunk in chunks:
        rows, dropped = _without_drops(first, chunk, drops, pending)
        data.duplicates += dropped
        if not rows:
            continue
        # A spool row: bucket, metricName, sessionId, *ROW_FIELDS, isBot, seq.
        bucket, metric, session, *fields, bot, seq = zip(*rows, strict=True)
        data.events += len(rows)
        for index, count in Counter(bucket).items():
            per_bucket[index] += count
        _add_counts(data.metrics, Counter(metric))
        for pair, count in Counter(zip(bucket, metric, strict=True)).items():
            if pair in pairs or len(pairs) < MAX_METRIC_BUCKETS:
                pairs[pair] = pairs.get(pair, 0) + count
        by_name = dict(zip(ROW_FIELDS, fields, strict=True))
        for name in EVENT_FIELDS:
            _add_counts(data.by_field[name], Counter(by_name[name]))
        reasons = [
            reason for is_bot, reason in zip(bot, by_name["botReason"], strict=True) if is_bot
        ]
        data.bots += len(reasons)
        _add_counts(data.bot_reasons, Counter(reasons))
        sessions.add(
            zip(session, bucket, by_name["referrer"], by_name["utm_source"], seq, strict=True)
        )


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
    raw_keys: list[str],
    reject_keys: Iterable[str],
    days: Iterable[date],
    *,
    on_source_done: Callable[[str], None] | None = None,
    jobs: int = 1,
) -> ReportData:
    """Read the raw objects at ``raw_keys`` and the rejects at ``reject_keys`` of ``store``.

    ``jobs`` > 1 reads raw objects in worker processes (the store must be picklable);
    the numbers are the same."""
    data = ReportData(tuple(days))
    with tempfile.TemporaryDirectory(prefix=f"report-{os.getpid()}-") as work:
        fingerprints = Fingerprints(work)
        spooled: list[_SpooledSource] = []
        for source in _spool_all(store, raw_keys, work, data.days, jobs):
            fingerprints.add_source(source.firsts, source.drop_paths)
            source.firsts, source.drop_paths = [], []
            data.raw_objects += 1
            data.bad_lines += source.bad_lines
            spooled.append(source)
            if on_source_done is not None:
                on_source_done(source.name)
        sessions = _SessionPartitions(work)
        _count_events(data, _spooled_chunks(spooled), fingerprints.drops(), sessions)
        data.delivery = delivery_of(_count_sessions(data, sessions))
    for key in reject_keys:
        data.reject_objects += 1
        for record in iter_records(store, [key], data.rejects.add_bad_line):
            data.rejects.add(record)
        if on_source_done is not None:
            on_source_done(key)
    return data
