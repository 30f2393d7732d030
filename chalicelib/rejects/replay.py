"""Replay stored rejects: send the now-valid ones on as live events, each once.

:mod:`chalicelib.rejects.revalidate` turns the rejects of ``rejected/YYYY/MM/DD/`` back into
the records the route would store now. Those go to the sink live events use (Firehose
on the events stream with its retries, or the local folder's ``raw/``), so they land
under the hour they are replayed in, and then in that day's CSV. After the sink took
them, a ledger line per event (its replay key) goes to
``replayed/YYYY/MM/DD/<run>.jsonl`` (the day of the reject's ``rejected/`` folder); a
later replay skips what a ledger names, before validating it. Should a run stop
between the sink and the ledger, the CSV's (sessionId, eventId) dedupe still drops the
second copy of a replay made the same day.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from chalicelib.config import Limits
from chalicelib.csv.read import BadLine
from chalicelib.ingest.enrich import Enricher
from chalicelib.ingest.validate import iso_ms
from chalicelib.layout import REPLAYED_PREFIX, day_prefix
from chalicelib.rejects.keyset import KeySets
from chalicelib.rejects.record import SCHEMA_VERSION
from chalicelib.rejects.replay_lock import DayLocks, locked_days
from chalicelib.rejects.revalidate import DROPPED_BOT, Group, Outcome, Revalidator
from chalicelib.rejects.summary import iter_records
from chalicelib.sinks import Sink, SinkUnavailable
from chalicelib.storage.base import ObjectStore

# Records handed to the sink per write: one Firehose call of a few records (it packs
# lines into 1,000 KiB records), or one append to the local file.
FLUSH_LINES = 2000
FLUSH_BYTES = 3 * 1024 * 1024
# A run's ledger lines are kept in memory up to this, then in a temporary file.
LEDGER_MEMORY_BYTES = 1024 * 1024
NOT_READABLE = "a line of rejected/ that is not a JSON object"
# Distinct reasons counted one by one (a reason may quote sizes, so each reject could
# have its own); past them, in one line.
MAX_REASONS = 1000
OTHER_REASONS = "other reasons (more distinct reasons than are counted one by one)"
SEEN, DONE = "seen", "done"  # the key sets: met in this run; named by a ledger


class ReplayError(Exception):
    """The sink stopped taking events; ``report`` says what was sent before that."""

    def __init__(self, message: str, report: ReplayReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ReplayReport:
    """What a run did, in events (a body still refused whole counts once)."""

    dry_run: bool = False
    replayed: int = 0
    already_replayed: int = 0
    repeated: int = 0  # the same reject stored twice (at-least-once delivery)
    dropped_bots: int = 0  # a bot's, and the stage drops those (DROP_BOTS)
    still_invalid: Counter[str] = field(default_factory=Counter)
    not_replayable: Counter[str] = field(default_factory=Counter)
    ledgers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            "replayed": self.replayed,
            "alreadyReplayed": self.already_replayed,
            "repeated": self.repeated,
            "droppedBots": self.dropped_bots,
            "stillInvalid": sum(self.still_invalid.values()),
            "stillInvalidByReason": dict(self.still_invalid.most_common()),
            "notReplayable": sum(self.not_replayable.values()),
            "notReplayableByReason": dict(self.not_replayable.most_common()),
            "ledgers": self.ledgers,
        }


class _Ledger:
    """Keys replayed before (read from ``replayed/``) and the lines this run adds, per day."""

    def __init__(self, store: ObjectStore, prefix: str, now: datetime) -> None:
        self._store = store
        self._prefix = prefix
        self._run = f"replay-{now:%Y%m%dT%H%M%SZ}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        replayed_at = iso_ms(int(now.timestamp() * 1000))
        self._tail = f'","replayedAt":"{replayed_at}","schemaVersion":"{SCHEMA_VERSION}"}}\n'
        self._spool = tempfile.SpooledTemporaryFile(max_size=LEDGER_MEMORY_BYTES)
        self._lines = 0

    def load(self, day: date, keys: KeySets) -> None:
        """Put the keys the day's ledgers name into ``keys``' DONE set."""
        found = self._store.list_keys(day_prefix(self._prefix, day))
        keys.update(DONE, _ledger_keys(iter_records(self._store, found, _ignore)))

    def add(self, keys: Sequence[bytes]) -> None:
        tail = self._tail
        self._spool.write(
            "".join(f'{{"key":"{uuid.UUID(bytes=key)}{tail}' for key in keys).encode()
        )
        self._lines += len(keys)

    def publish(self, day: date) -> str:
        """Write the day's ledger (nothing when nothing was sent) and start afresh."""
        if not self._lines:
            return ""
        key = day_prefix(self._prefix, day) + self._run
        self._spool.seek(0)
        with self._store.open_write(key) as handle:
            while chunk := self._spool.read(1024 * 1024):
                handle.write(chunk)
        self._spool.seek(0)
        self._spool.truncate()
        self._lines = 0
        return self._store.describe(key)

    def close(self) -> None:
        self._spool.close()


def _ledger_keys(entries: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for entry in entries:
        try:
            yield bytes.fromhex(str(entry.get("key")).replace("-", ""))
        except ValueError:
            continue


def count(counter: Counter[str], reason: str) -> None:
    """One more of ``reason``, within ``MAX_REASONS`` distinct ones."""
    if reason in counter or len(counter) < MAX_REASONS:
        counter[reason] += 1
    else:
        counter[OTHER_REASONS] += 1


def _ignore(_bad: BadLine) -> None:
    """A torn ledger line names nothing: its events may be sent again (the CSV dedupes)."""


class _Sender:
    """Batches now-valid lines into sink writes; keys go to the ledger once written."""

    def __init__(self, sink: Sink, ledger: _Ledger, report: ReplayReport) -> None:
        self._sink, self._ledger, self._report = sink, ledger, report
        self._lines: list[bytes] = []
        self._keys: list[bytes] = []
        self._bytes = 0

    def add(self, key: bytes, line: bytes) -> None:
        self._lines.append(line)
        self._keys.append(key)
        self._bytes += len(line)
        if len(self._lines) >= FLUSH_LINES or self._bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        self._sink.write(self._lines)
        self._ledger.add(self._keys)
        self._report.replayed += len(self._lines)
        self._lines, self._keys, self._bytes = [], [], 0


class _Day:
    """One day's rejects: what is new is validated, and sent unless this is a dry run."""

    def __init__(self, keys: KeySets, sender: _Sender | None, report: ReplayReport) -> None:
        self._keys, self._sender, self._report = keys, sender, report

    def fresh(self, keys: Sequence[bytes]) -> list[bool]:
        """For each key: not replayed before, and not met already in this run."""
        seen = self._keys.present(SEEN, keys)
        done = self._keys.present(DONE, keys)
        flags = []
        for key in keys:
            if key in seen:
                self._report.repeated += 1
                flags.append(False)
                continue
            seen.add(key)
            if key in done:
                self._report.already_replayed += 1
            flags.append(key not in done)
        self._keys.update(SEEN, keys)
        return flags

    def take(self, outcome: Outcome) -> None:
        if outcome.reason == DROPPED_BOT:
            self._report.dropped_bots += 1
        elif outcome.line is None:
            count(self._report.still_invalid, outcome.reason)
        elif self._sender is None:
            self._report.replayed += 1
        else:
            self._sender.add(outcome.key, outcome.line)


def replay(
    store: ObjectStore,
    days: Iterable[date],
    *,
    limits: Limits,
    sink: Sink | None,
    drop_bots: bool = False,
    rejected_prefix: str = "rejected/",
    replayed_prefix: str = REPLAYED_PREFIX,
    now: datetime | None = None,
) -> ReplayReport:
    """Replay the rejects of ``days``; ``sink`` None is a dry run (nothing is written).
    ``drop_bots``: the stage's ``DROP_BOTS``; a bot's events are dropped as the route
    drops them (counted, not sent, not in the ledger: a stage that keeps bots can
    still replay them).

    Raises ``ReplayError`` when the sink fails; what was sent until then is in the
    ledger and in the error's report. Raises ``ReplayLocked`` (having sent nothing) when
    another replay holds a day's lock; a dry run takes none.
    """
    days = list(days)
    report = ReplayReport(dry_run=sink is None)
    revalidator = Revalidator(limits, Enricher(drop_bots=drop_bots))
    locks = locked_days(store, replayed_prefix, days) if sink is not None else nullcontext()
    with (
        locks as held,
        KeySets((SEEN, DONE)) as keys,
        closing(_Ledger(store, replayed_prefix, now or datetime.now(UTC))) as ledger,
    ):
        for day in days:
            _replay_day(store, day, rejected_prefix, revalidator, keys, ledger, sink, held, report)
    return report


def _replay_day(
    store: ObjectStore,
    day: date,
    rejected_prefix: str,
    revalidator: Revalidator,
    keys: KeySets,
    ledger: _Ledger,
    sink: Sink | None,
    locks: DayLocks | None,
    report: ReplayReport,
) -> None:
    keys.clear()
    ledger.load(day, keys)
    sender = _Sender(sink, ledger, report) if sink is not None else None
    state = _Day(keys, sender, report)
    try:
        for work in _work(store, day, rejected_prefix, revalidator, report):
            if locks is not None:
                locks.renew()
            if isinstance(work, Outcome):
                if state.fresh([work.key])[0]:
                    state.take(work)
                continue
            flags = state.fresh([key for key, _ in work.items])
            items = [item for item, fresh in zip(work.items, flags, strict=True) if fresh]
            for outcome in revalidator.validate(work, items):
                state.take(outcome)
        if sender is not None:
            sender.flush()
    except SinkUnavailable as exc:
        raise ReplayError(
            f"{exc}: {report.replayed} event(s) were sent before that; run the same "
            "replay again to send the rest (the ledger skips what was sent)",
            report,
        ) from exc
    finally:
        if published := ledger.publish(day):
            report.ledgers.append(published)


def _work(
    store: ObjectStore, day: date, prefix: str, revalidator: Revalidator, report: ReplayReport
) -> Iterator[Group | Outcome]:
    def bad_line(_bad: BadLine) -> None:
        count(report.not_replayable, NOT_READABLE)

    keys = store.list_keys(day_prefix(prefix, day))
    for work in revalidator.work(iter_records(store, keys, bad_line)):
        if isinstance(work, str):
            count(report.not_replayable, work)
        else:
            yield work
