"""Where validated records go: one ``Sink`` implementation per backend.

Every sink takes newline-terminated JSON lines (one stored event each) and
either keeps all of them or raises ``SinkUnavailable``; the route answers 503
then, and the client keeps the events and sends them again (the CSV step drops
the duplicates a partial success leaves behind, by ``eventId``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from chalicelib.layout import local_sink_key

if TYPE_CHECKING:
    from mypy_boto3_firehose import FirehoseClient
    from mypy_boto3_firehose.type_defs import RecordTypeDef

_log = logging.getLogger(__name__)

# Firehose quotas (https://docs.aws.amazon.com/firehose/latest/dev/limits.html).
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024
FIREHOSE_MAX_BATCH_RECORDS = 500
FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024
# Errors that say "try again later" rather than "this will never work".
_RETRYABLE_CODES = frozenset(
    {
        "ServiceUnavailableException",
        "ThrottlingException",
        "LimitExceededException",
        "InternalFailure",
        "InternalServerError",
        "RequestTimeout",
    }
)


class SinkUnavailable(Exception):
    """The sink could not take every record; nothing the client sent is lost if it resends."""

    def __init__(self, message: str, undelivered: int) -> None:
        super().__init__(message)
        self.undelivered = undelivered


class Sink(Protocol):
    """Where accepted (or rejected) records go: stored whole, or ``SinkUnavailable``."""

    def write(self, records: Sequence[bytes]) -> None:
        """Store every record or raise ``SinkUnavailable``."""


def pack_records(lines: Iterable[bytes], max_bytes: int = FIREHOSE_MAX_RECORD_BYTES) -> list[bytes]:
    """Join whole lines into as few blobs of at most ``max_bytes`` as the order allows.

    Firehose bills each record as at least 5 KB, so one record per request
    instead of one per event is most of the cost saving.
    """
    packed: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > max_bytes:
            packed.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        packed.append(b"".join(current))
    return packed


def chunk_for_put(
    records: Sequence[bytes],
    max_records: int = FIREHOSE_MAX_BATCH_RECORDS,
    max_bytes: int = FIREHOSE_MAX_BATCH_BYTES,
) -> list[list[bytes]]:
    """Split records into PutRecordBatch calls within the count and size quotas."""
    chunks: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and (len(current) == max_records or size + len(record) > max_bytes):
            chunks.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        chunks.append(current)
    return chunks


class FirehoseSink:
    """PutRecordBatch with retries of exactly the records Firehose did not take."""

    def __init__(
        self,
        client: FirehoseClient,
        stream_name: str,
        time_budget_seconds: float = 8.0,
        base_delay_seconds: float = 0.05,
        max_delay_seconds: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._stream_name = stream_name
        # API Gateway gives up after 29 s; leave room for the Lambda around us.
        self._budget = time_budget_seconds
        self._base_delay = base_delay_seconds
        self._max_delay = max_delay_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._rng = rng or random.Random()

    def write(self, records: Sequence[bytes]) -> None:
        deadline = self._monotonic() + self._budget
        chunks = chunk_for_put(pack_records(records))
        for number, chunk in enumerate(chunks):
            # The budget holds across calls too, not only between retries of one.
            if number and self._monotonic() >= deadline:
                left = sum(len(rest) for rest in chunks[number:])
                raise SinkUnavailable(f"Firehose did not take {left} record(s) in time", left)
            self._put_with_retries(chunk, deadline)

    def _put_with_retries(self, pending: list[bytes], deadline: float) -> None:
        # Here, not at the top: the exporter imports this module, and a local export
        # does not load botocore (a client exists here, so botocore is loaded already).
        from botocore.exceptions import BotoCoreError, ClientError

        attempt = 0
        last_error = ""
        while True:
            try:
                pending, last_error = self._put_once(pending)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in _RETRYABLE_CODES:
                    raise SinkUnavailable(
                        f"Firehose refused the records ({code}): check the stream name, "
                        "region and the function's role",
                        len(pending),
                    ) from exc
                last_error = code
            except BotoCoreError as exc:  # connection errors, timeouts
                last_error = type(exc).__name__
            if not pending:
                return
            # Full jitter: spreads the retries of many Lambdas hitting the same throttle.
            delay = self._rng.uniform(0, min(self._max_delay, self._base_delay * 2**attempt))
            attempt += 1
            if self._monotonic() + delay >= deadline:
                raise SinkUnavailable(
                    f"Firehose did not take {len(pending)} record(s) in time ({last_error})",
                    len(pending),
                )
            self._sleep(delay)

    def _put_once(self, pending: list[bytes]) -> tuple[list[bytes], str]:
        entries: list[RecordTypeDef] = [{"Data": data} for data in pending]
        response = self._client.put_record_batch(
            DeliveryStreamName=self._stream_name, Records=entries
        )
        if not response.get("FailedPutCount"):
            return [], ""
        failed: list[bytes] = []
        codes: set[str] = set()
        for data, answer in zip(pending, response["RequestResponses"], strict=True):
            if answer.get("ErrorCode"):
                failed.append(data)
                codes.add(answer["ErrorCode"])
        return failed, ",".join(sorted(codes))


class LocalDirectorySink:
    """Appends lines under ``<root>/raw/YYYY/MM/DD/HH/`` like Firehose lays out S3.

    One file per process per minute stands in for Firehose's buffer interval.
    Each request is one ``write`` under an exclusive ``flock``, so concurrent
    requests (threads or processes) never interleave. An erasure rewrites a file
    under the same lock and renames the new one over it: a writer that got the lock
    of the old file then appends to the new one (no acknowledged line is lost).
    If a crashed writer left a torn last line, the next writer terminates it first:
    the fragment becomes one bad line that the converter reports under ``errors/``, and no good line
    is ever glued to it.
    """

    def __init__(
        self,
        root: Path | str,
        raw_prefix: str = "raw/",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_written: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self._raw_prefix = raw_prefix
        self._now = now
        self._on_written = on_written
        self._lock = threading.Lock()

    def key_for(self, moment: datetime) -> str:
        return local_sink_key(self._raw_prefix, moment)

    def write(self, records: Sequence[bytes]) -> None:
        if not records:
            return
        key = self.key_for(self._now())
        path = self.root / key
        payload = b"".join(records)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                self._append(path, payload)
        except OSError as exc:
            raise SinkUnavailable(
                f"could not write to {path.parent}: {exc.strerror}", len(records)
            ) from exc
        if self._on_written is not None:
            # The lines are stored: whatever the callback does, the answer is a success.
            try:
                self._on_written(key)
            except Exception:
                _log.exception("after writing %s, the on_written callback failed", key)

    @staticmethod
    def _append(path: Path, payload: bytes) -> None:
        while True:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _still_at(fd, path):
                break
            # An erasure replaced the file while this waited for its lock (it holds the
            # same lock while it rewrites): append to the file now at the path instead.
            os.close(fd)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = b"\n" + payload
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)  # closing releases the flock


def _still_at(fd: int, path: Path) -> bool:
    """Is the open file ``fd`` still the one at ``path``?"""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (mine.st_dev, mine.st_ino)


class MemorySink:
    """Keeps records in a list; ``fail_next`` makes the next writes fail (tests)."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.fail_next = 0

    def write(self, records: Sequence[bytes]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise SinkUnavailable("memory sink told to fail", len(records))
        self.records.extend(records)

    def lines(self) -> list[bytes]:
        return [line for record in self.records for line in record.splitlines()]
