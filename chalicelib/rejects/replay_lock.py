"""One replay per day at a time: a lock per day of rejects, in a folder or a bucket.

Two replays of the same day would both read the ledger before either wrote it, and both
send every reject. So a replay (not a dry run) takes the lock of each day of its range
before reading anything, and a second replay stops with one line naming the holder.

- A folder: ``replayed/locks/YYYY-MM-DD.lock`` held with ``flock``; the kernel releases
  it when the process ends, however it ends.
- A bucket: the object ``replayed/locks/YYYY-MM-DD.lock`` created with
  ``If-None-Match: *`` (only one create can succeed). It says until when it holds
  (``LEASE_SECONDS`` ahead), and the running replay moves that on as it goes
  (``If-Match`` its own ETag). A lock past its time was left by a replay that died: the
  next replay takes it over, again with ``If-Match``, so only one of several can.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta

from chalicelib.layout import replay_lock_key
from chalicelib.storage.base import ObjectStore
from chalicelib.storage.local import LocalStore
from chalicelib.storage.s3 import S3Store

# How long a bucket lock holds without being renewed; renewed every third of it.
LEASE_SECONDS = 600


class ReplayLocked(Exception):
    """Another replay holds a day's lock (or took it over): one line saying which."""


def _holder(now: datetime, lease: float | None) -> bytes:
    """Who holds a lock, and (a bucket's) until when."""
    holder = {"host": socket.gethostname(), "pid": os.getpid()}
    holder["since"] = now.isoformat(timespec="seconds")
    if lease is not None:
        holder["until"] = (now + timedelta(seconds=lease)).isoformat(timespec="seconds")
    return json.dumps(holder).encode()


def _who(data: bytes) -> str:
    try:
        holder = json.loads(data)
        return f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, TypeError):
        return "a replay"


class _BucketLock:
    """The lock object of one day, renewed while held."""

    def __init__(
        self, store: S3Store, key: str, lease: float, clock: Callable[[], datetime]
    ) -> None:
        self._store, self._key, self._lease, self._clock = store, key, lease, clock
        self._etag = ""
        self._renewed = 0.0

    def take(self, day: date) -> None:
        now = self._clock()
        etag = self._store.create_exclusive(self._key, _holder(now, self._lease))
        if etag is None:
            found = self._store.read_tagged(self._key)
            if found is None:  # released meanwhile: try once more
                etag = self._store.create_exclusive(self._key, _holder(now, self._lease))
            elif _expired(found[0], now):
                etag = self._store.replace_if(self._key, _holder(now, self._lease), found[1])
            if etag is None:
                who = _who(found[0]) if found else "a replay"
                raise ReplayLocked(
                    f"another replay of {day} is running ({who}; lock "
                    f"{self._store.describe(self._key)}): wait for it to finish, then run "
                    "this one again (it sends only what that one did not)"
                )
        self._etag, self._renewed = etag, time.monotonic()

    def renew(self) -> None:
        if time.monotonic() - self._renewed < self._lease / 3:
            return
        etag = self._store.replace_if(self._key, _holder(self._clock(), self._lease), self._etag)
        if etag is None:
            raise ReplayLocked(
                f"this replay lost its lock {self._store.describe(self._key)} (it was not "
                f"renewed for {self._lease:.0f} s and another replay took it over): stopped"
            )
        self._etag, self._renewed = etag, time.monotonic()

    def release(self) -> None:
        self._store.delete_if(self._key, self._etag)


def _expired(data: bytes, now: datetime) -> bool:
    try:
        return bool(datetime.fromisoformat(json.loads(data)["until"]) < now)
    except (ValueError, KeyError, TypeError):
        return True  # not a lock this code wrote: nobody renews it


class DayLocks:
    """The held locks of a run; ``renew`` keeps bucket locks alive (cheap to call often)."""

    def __init__(self) -> None:
        self._bucket_locks: list[_BucketLock] = []

    def renew(self) -> None:
        for lock in self._bucket_locks:
            lock.renew()


@contextmanager
def locked_days(
    store: ObjectStore,
    replayed_prefix: str,
    days: Iterable[date],
    *,
    lease: float = LEASE_SECONDS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[DayLocks]:
    """Hold the lock of every day, or raise ``ReplayLocked`` having taken none."""
    held = DayLocks()
    with ExitStack() as stack:
        for day in sorted(set(days)):
            key = replay_lock_key(replayed_prefix, day)
            if isinstance(store, S3Store):
                lock = _BucketLock(store, key, lease, clock)
                lock.take(day)
                stack.callback(lock.release)
                held._bucket_locks.append(lock)
            elif isinstance(store, LocalStore):
                stack.enter_context(_folder_lock(store, key, day, clock()))
            else:
                raise TypeError(f"no lock for a {type(store).__name__}")
        yield held


@contextmanager
def _folder_lock(store: LocalStore, key: str, day: date, now: datetime) -> Iterator[None]:
    path = store.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ReplayLocked(
                f"another replay of {day} is running ({_who(os.pread(fd, 4096, 0))}; lock "
                f"{path}): wait for it to finish, then run this one again (it sends only "
                "what that one did not)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder(now, None), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
