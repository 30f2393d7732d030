"""Erasure: one person's events out of every stored copy ("right to erasure").

``erase`` runs in four steps, each safe to repeat:

1. **Scan** the raw (and rejected) objects of the requested UTC days, in parallel, for
   records whose ``sessionId``, ``eventId`` or named top-level field has a requested
   value (or only the objects Athena located). Nothing is written.
2. **Plan**: a pending manifest ``erasure/pending/<run>.json`` lists the objects to
   rewrite, before any is touched. It holds no requested value, only a salted scrypt
   hash of the request, so that running the same request again recognises it.
3. **Rewrite** each object that holds matches, at the same key and in the same form
   (gzip stays gzip), line by line: kept lines are copied byte for byte. Each object
   is published whole (rename, or one S3 upload), then its older S3 versions are
   deleted. Then the CSV parts of the rewritten raw objects and the daily files of
   their days are built again from them, and their old versions deleted too.
4. **Audit**: ``erasure/YYYY/MM/DD/<run>.json`` says what was asked (the fields and how
   many values, never the values), when, and how many events left which objects;
   then the pending manifest goes.

A run killed at any point leaves each object either old or new. Running the same
request again adopts the pending manifest (same run id): it rewrites what still
matches, rebuilds the CSVs of every object in the plan, and writes the one audit
record, so the end is the same as for a run that was never interrupted.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import gzip
import hashlib
import io
import json
import multiprocessing
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, BinaryIO, Literal

import orjson

from chalicelib.config import Settings
from chalicelib.csv.read import GZIP_MAGIC, _iter_decompressed, _next_object, _StreamError
from chalicelib.jobs import (
    build_daily_csv,
    convert_raw_object,
    daily_key_for,
    days_between,
    part_key_for,
)
from chalicelib.storage import ErasableStore
from chalicelib.strictjson import DECODER

REJECTED_PREFIX = "rejected/"
ERASURE_PREFIX = "erasure/"
SESSION_FIELD = "sessionId"
EVENT_FIELD = "eventId"
AUDIT_VERSION = 1
# Rewritten gzip objects: Firehose's ratio at a fraction of level 9's time.
GZIP_LEVEL = 6
# scrypt of the request in the pending manifest: slow enough that guessing a short
# value (a device name) from it costs, fast enough for one run (~50 ms, 16 MiB).
SCRYPT_COST = {"n": 2**14, "r": 8, "p": 1}
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")

Kind = Literal["raw", "rejected"]
Advance = Callable[[str], None]
Progress = Callable[[int, str], AbstractContextManager[Advance]]


class ErasureError(Exception):
    """The request or the data stops the erasure; the message says what to do."""


@contextmanager
def no_progress(_total: int, _label: str) -> Iterator[Advance]:
    yield lambda _name: None


# --- the request ---------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureRequest:
    """Which events to erase: any record with one of the values in one of the fields."""

    criteria: tuple[tuple[str, tuple[str, ...]], ...]
    first: date
    last: date

    @classmethod
    def build(
        cls,
        *,
        first: date,
        last: date,
        session_ids: Iterable[str] = (),
        event_ids: Iterable[str] = (),
        matches: Iterable[tuple[str, str]] = (),
    ) -> ErasureRequest:
        wanted: dict[str, set[str]] = {}
        pairs = [
            *((SESSION_FIELD, v) for v in session_ids),
            *((EVENT_FIELD, v) for v in event_ids),
            *matches,
        ]
        for name, value in pairs:
            if not name:
                raise ErasureError("a field name must not be empty (--match FIELD=VALUE)")
            if not value:
                raise ErasureError(f"an empty value for {name} would match too much")
            wanted.setdefault(name, set()).add(value)
        if not wanted:
            raise ErasureError("nothing to look for: give --session-id, --event-id or --match")
        if last < first:
            raise ErasureError(f"the range ends ({last}) before it starts ({first})")
        criteria = tuple((name, tuple(sorted(values))) for name, values in sorted(wanted.items()))
        return cls(criteria, first, last)

    def shape(self) -> dict[str, int]:
        """How many values per field: what an audit record may say about the request."""
        return {name: len(values) for name, values in self.criteria}

    def fingerprint(self, salt: bytes, cost: dict[str, int]) -> str:
        """A salted scrypt hash that tells this request again without holding it."""
        criteria = [[name, list(values)] for name, values in self.criteria]
        # json, not orjson: a value from argv may hold lone surrogates.
        canonical = json.dumps([criteria, str(self.first), str(self.last)]).encode("ascii")
        return hashlib.scrypt(
            canonical, salt=salt, n=cost["n"], r=cost["r"], p=cost["p"], dklen=32
        ).hex()


def value_text(value: Any) -> str:
    """What a stored value is compared as: a string as itself, anything else as its
    compact JSON text (``17``, ``true``, ``null``, ``{"a":1}``)."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:  # integers past 64 bits
        return json.dumps(value, separators=(",", ":"))


def _needles(value: str) -> list[bytes]:
    """The byte strings a stored line holding ``value`` contains: as JSON writes it
    (escaped, with ``/`` optionally as ``\\/``) and as it is (for unparseable lines)."""
    plain = value.encode("utf-8", "surrogatepass")
    found = {plain}
    try:
        escaped = orjson.dumps(value)[1:-1]
    except orjson.JSONEncodeError:  # lone surrogates: written as \\u escapes
        escaped = plain
    found.update({escaped, escaped.replace(b"/", b"\\/")})
    return sorted(found)


@dataclass(frozen=True)
class Matcher:
    """The request as the scan applies it; small and picklable for worker processes."""

    criteria: dict[str, frozenset[str]]
    needles: tuple[bytes, ...]
    # False when a value can be written more ways than the needles cover (a number:
    # 1e1 is 10.0; an object: any spacing): then every line is parsed.
    prefilter: bool

    @classmethod
    def for_request(cls, request: ErasureRequest) -> Matcher:
        values = [v for _, vs in request.criteria for v in vs]
        textual = not any(_JSON_NUMBER.fullmatch(v) or v[:1] in "{[" for v in values)
        return cls(
            {name: frozenset(vs) for name, vs in request.criteria},
            tuple(sorted({n for v in values for n in _needles(v)})),
            textual,
        )

    def may_match(self, data: bytes) -> bool:
        """Could a line in ``data`` match? False is certain; True means parse and see.
        A ``\\u`` escape can spell any character, so it always means parse."""
        # Looking for a backslash first: memchr-fast, and most data has none.
        if not self.prefilter or (b"\\" in data and b"\\u" in data):
            return True
        return self.contains_value(data)

    def contains_value(self, data: bytes) -> bool:
        """Does the text hold a requested value anywhere (lines that are not records)?"""
        return any(needle in data for needle in self.needles)

    def record_matches(self, record: dict[str, Any]) -> bool:
        for name, wanted in self.criteria.items():
            if name in record and value_text(record[name]) in wanted:
                return True
        return False


# --- rewriting one object ------------------------------------------------------------


@dataclass
class Removed:
    events: int = 0  # records (stored events, or rejected events) that matched
    bad_lines: int = 0  # lines that are not records but hold a requested value
    rejected_bodies: int = 0  # whole-body rejects whose body holds a requested value

    @property
    def total(self) -> int:
        return self.events + self.bad_lines + self.rejected_bodies

    def add(self, other: Removed) -> None:
        self.events += other.events
        self.bad_lines += other.bad_lines
        self.rejected_bodies += other.rejected_bodies

    def as_json(self) -> dict[str, int]:
        return {
            "events": self.events,
            "badLines": self.bad_lines,
            "rejectedBodies": self.rejected_bodies,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Removed:
        return cls(int(data["events"]), int(data["badLines"]), int(data["rejectedBodies"]))


@dataclass
class ObjectResult:
    key: str
    kind: Kind
    removed: Removed = field(default_factory=Removed)
    damaged: str = ""  # why the object could not be read to its end
    versions_deleted: int = 0


class _LineFilter:
    """Yields an object's decompressed bytes minus the matching records.

    Whole chunks go through untouched when no requested value can be in them, so an
    object without matches costs a decompression and a substring search. Candidate
    lines are parsed; a line of concatenated objects keeps its other objects' text.
    """

    def __init__(self, matcher: Matcher, kind: Kind) -> None:
        self._matcher = matcher
        self._kind = kind
        # A rejected body may be base64: its text says nothing, so every line is read.
        self._may_match = matcher.may_match if kind == "raw" else _always
        self.removed = Removed()
        self.damaged = ""

    def run(self, raw: BinaryIO) -> Iterator[bytes]:
        pending: list[bytes] = []  # a line still without its end, in pieces
        for chunk in self._chunks(raw):
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                pending.append(chunk)
                continue
            if pending:
                pending.append(chunk[:cut])
                body = b"".join(pending)
                pending = []
            else:
                body = chunk[:cut]
            if cut < len(chunk):
                pending.append(chunk[cut:])
            yield from self._body(body)
        if pending:
            yield from self._body(b"".join(pending))

    def _chunks(self, raw: BinaryIO) -> Iterator[bytes]:
        try:
            yield from _iter_decompressed(raw)
        except _StreamError as exc:
            self.damaged = str(exc)

    def _body(self, body: bytes) -> Iterator[bytes]:
        """Whole lines (the last one may lack its newline)."""
        if not self._may_match(body):
            yield body
            return
        lines = body.split(b"\n")
        last = lines.pop()  # empty when the body ends with a newline
        for line in lines:
            yield self._line(line + b"\n") if self._may_match(line) else line + b"\n"
        if last:
            yield self._line(last)

    def _line(self, line: bytes) -> bytes:
        """The line as it was, or what is left of it (nothing when all of it went)."""
        content = line.rstrip(b"\r\n")
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            return self._concatenated(line, content)
        return b"" if self._erase(value, content) else line

    def _concatenated(self, line: bytes, content: bytes) -> bytes:
        """Objects side by side on one line (``{…}{…}``), or a line that is no JSON:
        what is kept is the other objects' own text."""
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            return b"" if self._bad(content) else line
        kept: list[str] = []
        changed = False
        position = 0
        while position < len(text):
            start = position
            while position < len(text) and text[position].isspace():
                position += 1
            if position == len(text):
                kept.append(text[start:])
                break
            try:
                value, position = DECODER.raw_decode(text, position)
                gone = self._erase(value, text[start:position].encode("utf-8"))
            except (ValueError, RecursionError):
                position = _next_object(text, position)
                gone = self._bad(text[start:position].encode("utf-8"))
            if gone:
                changed = True
            else:
                kept.append(text[start:position])
        if not changed:
            return line
        rest = "".join(kept).strip()  # the space that stood between objects
        return rest.encode("utf-8") + line[len(content) :] if rest else b""

    def _bad(self, text: bytes) -> bool:
        """Text that is no record goes (and is counted) when it holds a requested value."""
        if self._matcher.contains_value(text):
            self.removed.bad_lines += 1
            return True
        return False

    def _erase(self, value: Any, text: bytes) -> bool:
        """Should this JSON value go? Counts it when it does."""
        if not isinstance(value, dict):
            return self._bad(text)
        if self._kind == "rejected":
            return self._rejected(value, text)
        if self._matcher.record_matches(value):
            self.removed.events += 1
            return True
        return False

    def _rejected(self, record: dict[str, Any], text: bytes) -> bool:
        """A rejected event matches like a stored one, on its fields, its own context or
        the batch's; a body rejected whole, or an event that is no object, can only be
        searched as text."""
        if "body" in record and "event" not in record:
            if self._matcher.contains_value(_body_bytes(record)):
                self.removed.rejected_bodies += 1
                return True
            return False
        event, context = record.get("event"), record.get("context")
        scopes = [s for s in (event, context) if isinstance(s, dict)]
        if isinstance(event, dict) and isinstance(event.get("context"), dict):
            scopes.append(event["context"])
        matched = any(self._matcher.record_matches(scope) for scope in scopes)
        if not isinstance(event, dict) and event is not None:
            matched = matched or self._matcher.contains_value(text)
        if matched:
            self.removed.events += 1
        return matched


def _always(_data: bytes) -> bool:
    return True


def _body_bytes(record: dict[str, Any]) -> bytes:
    body = record.get("body")
    if not isinstance(body, str):
        return json.dumps(body).encode("utf-8")
    if record.get("bodyEncoding") == "base64":
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            pass
    return body.encode("utf-8", "surrogatepass")


def _kind_of(key: str, rejected_prefix: str) -> Kind:
    return "rejected" if key.startswith(rejected_prefix) else "raw"


def _is_gzip(raw: BinaryIO) -> bool:
    if isinstance(raw, io.BufferedReader):
        return raw.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)] == GZIP_MAGIC
    raise TypeError(f"cannot peek at a {type(raw).__name__}")


def scan_object(
    store: ErasableStore, matcher: Matcher, rejected_prefix: str, key: str
) -> ObjectResult:
    """How much ``erase`` would remove from one object (nothing is written)."""
    result = ObjectResult(key, _kind_of(key, rejected_prefix))
    lines = _LineFilter(matcher, result.kind)
    with store.open_read(key) as raw:
        for _ in lines.run(raw):
            pass
    result.removed, result.damaged = lines.removed, lines.damaged
    return result


class _NothingToRemove(Exception):
    """Raised inside a write to abandon it: the object stays as it is."""


def erase_object(
    store: ErasableStore, matcher: Matcher, rejected_prefix: str, key: str, rewrite: bool
) -> ObjectResult:
    """Rewrite ``key`` without its matches (when ``rewrite``), then delete its older
    versions. An object with nothing left to remove is not written again."""
    result = ObjectResult(key, _kind_of(key, rejected_prefix))
    if rewrite:
        lines = _LineFilter(matcher, result.kind)
        try:
            with store.open_read(key) as raw, store.open_write(key) as handle:
                if _is_gzip(raw):
                    with gzip.GzipFile(
                        filename="", mode="wb", fileobj=handle, compresslevel=GZIP_LEVEL, mtime=0
                    ) as packed:
                        _copy(lines.run(raw), packed)
                else:
                    _copy(lines.run(raw), handle)
                if lines.damaged:
                    raise ErasureError(_damaged_message(store, key, lines.damaged))
                if not lines.removed.total:
                    raise _NothingToRemove
            result.removed = lines.removed
        except _NothingToRemove:
            pass
    result.versions_deleted = store.purge_old_versions(key)
    return result


def _copy(pieces: Iterable[bytes], handle: Any) -> None:
    for piece in pieces:
        handle.write(piece)


def _damaged_message(store: ErasableStore, key: str, reason: str) -> str:
    return (
        f"{store.describe(key)} holds matching events but cannot be read to its end "
        f"({reason}): rewriting it would lose the unreadable rest. Repair or delete it, "
        "then run the erasure again"
    )


# --- rebuilding what was made from the raw objects -----------------------------------


@dataclass
class Rebuilt:
    key: str  # the CSV part or daily file
    daily: bool
    written: bool = False  # False: it did not exist, so there was nothing to rebuild
    errors_deleted: str = ""  # an errors/ object whose bad lines are all gone now
    versions_deleted: int = 0


def _rebuild(
    store: ErasableStore, result: Rebuilt, errors_key: str, build: Callable[[], Any]
) -> Rebuilt:
    """Build ``result.key`` again if it exists (a CSV nobody made is not made now)."""
    key = result.key
    if store.exists(key):
        report = build()
        result.written = True
        # A rebuild publishes its bad lines only when there are some: an old errors
        # object would keep lines that were just erased.
        if not report.bad_lines and store.exists(errors_key):
            store.delete(errors_key)
            result.errors_deleted = errors_key
    result.versions_deleted = store.purge_old_versions(key) + store.purge_old_versions(errors_key)
    return result


def rebuild_part(store: ErasableStore, settings: Settings, raw_key: str) -> Rebuilt:
    part = part_key_for(raw_key, settings)
    relative = part[len(settings.csv_prefix) + len("parts/") :].removesuffix(".csv")
    errors_key = f"{settings.errors_prefix}parts/{relative}.jsonl"
    build = partial(convert_raw_object, store, raw_key, settings)
    return _rebuild(store, Rebuilt(part, daily=False), errors_key, build)


def rebuild_daily(store: ErasableStore, settings: Settings, day: date) -> Rebuilt:
    errors_key = f"{settings.errors_prefix}daily/{day.isoformat()}.jsonl"
    build = partial(build_daily_csv, store, day, settings)
    return _rebuild(store, Rebuilt(daily_key_for(day, settings), daily=True), errors_key, build)


def day_of(key: str, prefix: str) -> date | None:
    """The UTC day of ``<prefix>YYYY/MM/DD/…``, or None for another layout."""
    try:
        return datetime.strptime(key[len(prefix) : len(prefix) + 10], "%Y/%m/%d").date()
    except ValueError:
        return None


# --- running tasks in parallel -------------------------------------------------------


@dataclass(frozen=True)
class Workers:
    """How many objects are handled at once. Reads and rewrites run in threads: zlib
    and the network release the GIL, and boto3 clients are thread-safe. CSV rebuilds
    are Python work: with ``processes`` (a local folder: its store pickles) they run
    in worker processes."""

    count: int = 1
    processes: bool = False

    def map[T, R](
        self,
        task: Callable[[T], R],
        items: Sequence[T],
        progress: Progress = no_progress,
        label: str = "",
        *,
        python_bound: bool = False,
    ) -> list[R]:
        """``task`` over ``items``, results in order; the first error stops the rest."""
        if not items:
            return []
        with progress(len(items), label) as advance:
            return self._map(task, items, advance, self.processes and python_bound)

    def _map[T, R](
        self, task: Callable[[T], R], items: Sequence[T], advance: Advance, processes: bool
    ) -> list[R]:
        results: list[R] = []
        if self.count <= 1 or len(items) <= 1:
            for item in items:
                results.append(task(item))
                advance(str(item))
            return results
        pool: concurrent.futures.Executor
        if processes:
            # spawn, not fork: the caller may have threads (a fork copies their locks).
            context = multiprocessing.get_context("spawn")
            pool = concurrent.futures.ProcessPoolExecutor(self.count, mp_context=context)
        else:
            pool = concurrent.futures.ThreadPoolExecutor(self.count)
        # Several items per hand-over: a process costs a pickle round trip per chunk.
        chunk = max(1, len(items) // (self.count * 8)) if processes else 1
        with pool:
            try:
                for item, result in zip(items, pool.map(task, items, chunksize=chunk), strict=True):
                    results.append(result)
                    advance(str(item))
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return results


# --- the run -------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each kind of object lives; every prefix ends with ``/``."""

    settings: Settings  # raw/, csv/, errors/ and how CSVs are written
    rejected_prefix: str = REJECTED_PREFIX
    erasure_prefix: str = ERASURE_PREFIX

    def pending_prefix(self) -> str:
        return f"{self.erasure_prefix}pending/"

    def pending_key(self, run_id: str) -> str:
        return f"{self.pending_prefix()}{run_id}.json"

    def audit_key(self, run_id: str) -> str:
        started = datetime.strptime(run_id[:8], "%Y%m%d")
        return f"{self.erasure_prefix}{started:%Y/%m/%d}/{run_id}.json"


@dataclass
class ErasureReport:
    run_id: str
    dry_run: bool
    objects: list[ObjectResult]  # what was (or would be) removed, per object
    scanned: int = 0
    resumed: bool = False
    parts: list[str] = field(default_factory=list)
    daily: list[str] = field(default_factory=list)
    errors_deleted: list[str] = field(default_factory=list)
    versions_deleted: int = 0
    audit: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def removed(self) -> Removed:
        total = Removed()
        for result in self.objects:
            total.add(result.removed)
        return total


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def list_objects(
    store: ErasableStore, layout: Layout, request: ErasureRequest, workers: Workers
) -> tuple[list[str], list[str]]:
    """The raw and the rejected keys of the requested days."""
    days = days_between(request.first, request.last)
    prefixes = [
        f"{p}{d:%Y/%m/%d}/"
        for p in (layout.settings.raw_prefix, layout.rejected_prefix)
        for d in days
    ]
    listed = workers.map(store.list_keys, prefixes)
    raw = [k for keys in listed[: len(days)] for k in keys]
    rejected = [k for keys in listed[len(days) :] for k in keys]
    return raw, rejected


def located_keys(keys: Iterable[str], layout: Layout, request: ErasureRequest) -> list[str]:
    """Keys found elsewhere (Athena's ``$path``), kept only inside raw/ and the range."""
    chosen = set()
    for key in keys:
        day = day_of(key, layout.settings.raw_prefix)
        if (
            key.startswith(layout.settings.raw_prefix)
            and day
            and request.first <= day <= request.last
        ):
            chosen.add(key)
    return sorted(chosen)


def erase(
    store: ErasableStore,
    request: ErasureRequest,
    layout: Layout,
    *,
    raw_keys: Sequence[str] | None = None,
    located_by: str = "scan",
    dry_run: bool = False,
    workers: Workers = Workers(),
    progress: Progress = no_progress,
    now: Callable[[], datetime] = _utc_now,
) -> ErasureReport:
    """Erase the events ``request`` matches from ``store`` (see the module's doc).

    ``raw_keys``: only these raw objects may hold matches (located by Athena); the
    rejected objects of the range are scanned all the same. None scans every object.
    """
    matcher = Matcher.for_request(request)
    listed_raw, rejected = list_objects(store, layout, request, workers)
    keys = [
        *(listed_raw if raw_keys is None else located_keys(raw_keys, layout, request)),
        *rejected,
    ]
    scan = partial(scan_object, store, matcher, layout.rejected_prefix)
    scanned = workers.map(scan, keys, progress, "scanning")
    found = [r for r in scanned if r.removed.total]
    for result in found:
        if result.damaged:
            raise ErasureError(_damaged_message(store, result.key, result.damaged))
    notes = [
        f"{store.describe(r.key)} could not be read to its end ({r.damaged}); "
        "what could be read holds no match, and it was left as it is"
        for r in scanned
        if r.damaged
    ]
    pending, others = _pending_manifests(store, layout, request)
    notes += [
        f"an unfinished erasure of another request is pending (run {d['runId']}, started "
        f"{d['startedAt']}): run that same request again to finish it"
        for d in others
    ]
    if dry_run:
        if pending is not None:
            notes.append(
                "an unfinished run of this same request is pending: "
                "run without --dry-run to finish it"
            )
        return ErasureReport("", True, found, scanned=len(keys), notes=notes)
    return _Run(store, layout, request, matcher, workers, progress, now, pending).complete(
        found, len(keys), located_by, notes
    )


def _pending_manifests(
    store: ErasableStore, layout: Layout, request: ErasureRequest
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """This request's unfinished run (if any), and other requests' unfinished runs."""
    mine: dict[str, Any] | None = None
    others: list[dict[str, Any]] = []
    for key in store.list_keys(layout.pending_prefix()):
        with store.open_read(key) as handle:
            manifest = orjson.loads(handle.read())
        proof = manifest["requestFingerprint"]
        if (
            mine is None
            and request.fingerprint(bytes.fromhex(proof["salt"]), proof) == proof["scrypt"]
        ):
            mine = manifest
        else:
            others.append(manifest)
    return mine, others


class _Run:
    """One erasure run, or the continuation of an interrupted run of the same request."""

    def __init__(
        self,
        store: ErasableStore,
        layout: Layout,
        request: ErasureRequest,
        matcher: Matcher,
        workers: Workers,
        progress: Progress,
        now: Callable[[], datetime],
        pending: dict[str, Any] | None,
    ) -> None:
        self.store, self.layout, self.request = store, layout, request
        self.matcher, self.workers, self.progress = matcher, workers, progress
        self.now = now
        self.pending = pending
        started = now()
        if pending is None:
            self.run_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"
            self.started_at, self.attempts = _iso(started), 1
            self.salt = secrets.token_bytes(16)
        else:
            self.run_id = pending["runId"]
            self.started_at, self.attempts = pending["startedAt"], pending["attempts"] + 1
            self.salt = bytes.fromhex(pending["requestFingerprint"]["salt"])

    def complete(
        self, found: list[ObjectResult], scanned: int, located_by: str, notes: list[str]
    ) -> ErasureReport:
        plan = self._plan(found)
        report = ErasureReport(
            self.run_id,
            False,
            list(plan.values()),
            scanned=scanned,
            resumed=self.pending is not None,
        )
        report.notes = notes
        if plan:
            self._write_json(
                self.layout.pending_key(self.run_id), self._document(plan, located_by, "pending")
            )
        current = {r.key for r in found}
        rewrite = partial(
            _erase_task, self.store, self.matcher, self.layout.rejected_prefix, current
        )
        for result in self.workers.map(rewrite, list(plan), self.progress, "rewriting"):
            report.versions_deleted += result.versions_deleted
        raw = sorted(k for k, r in plan.items() if r.kind == "raw")
        days = sorted({d for d in (day_of(k, self.layout.settings.raw_prefix) for k in raw) if d})
        jobs: list[date | str] = [*raw, *days]
        rebuild = partial(_rebuild_task, self.store, self.layout.settings)
        rebuilt_all = self.workers.map(
            rebuild, jobs, self.progress, "rebuilding CSVs", python_bound=True
        )
        for rebuilt in rebuilt_all:
            if rebuilt.written:
                (report.daily if rebuilt.daily else report.parts).append(rebuilt.key)
            if rebuilt.errors_deleted:
                report.errors_deleted.append(rebuilt.errors_deleted)
            report.versions_deleted += rebuilt.versions_deleted
        document = self._document(plan, located_by, "complete")
        document["completedAt"] = _iso(self.now())
        document["rebuilt"] = {"csvParts": report.parts, "dailyFiles": report.daily}
        # What only this attempt did: an interrupted one's deletions are not known.
        document["lastAttempt"] = {
            "errorsObjectsDeleted": report.errors_deleted,
            "oldVersionsDeleted": report.versions_deleted,
        }
        document["notes"] = notes
        audit_key = self.layout.audit_key(self.run_id)
        self._write_json(audit_key, document)
        self.store.purge_old_versions(audit_key)
        report.audit = self.store.describe(audit_key)
        # Last: until it goes, running the request again finishes this run. Every
        # version goes with it (it holds the request's salted hash).
        self.store.delete(self.layout.pending_key(self.run_id))
        return report

    def _plan(self, found: list[ObjectResult]) -> dict[str, ObjectResult]:
        """The objects of this run: what an interrupted run of the same request planned
        (with the counts it found), and what the scan finds now (its counts win: an
        object still holding matches was not rewritten yet)."""
        plan: dict[str, ObjectResult] = {}
        for entry in (self.pending or {}).get("objects", []):
            plan[entry["key"]] = ObjectResult(entry["key"], entry["kind"], Removed.from_json(entry))
        for result in found:
            plan[result.key] = result
        return dict(sorted(plan.items()))

    def _document(
        self, plan: dict[str, ObjectResult], located_by: str, state: str
    ) -> dict[str, Any]:
        total = Removed()
        for result in plan.values():
            total.add(result.removed)
        document: dict[str, Any] = {
            "type": "owned-analytics erasure",
            "version": AUDIT_VERSION,
            "runId": self.run_id,
            "state": state,
            "startedAt": self.started_at,
            "attempts": self.attempts,
            "request": {
                # Field names and how many values each: never the values themselves.
                "valuesPerField": self.request.shape(),
                "from": self.request.first.isoformat(),
                "to": self.request.last.isoformat(),
                "locatedBy": located_by,
            },
            "removed": total.as_json(),
            "objects": [
                {"key": r.key, "kind": r.kind, **r.removed.as_json()} for r in plan.values()
            ],
        }
        if state == "pending":
            document["requestFingerprint"] = {
                "scrypt": self.request.fingerprint(self.salt, SCRYPT_COST),
                "salt": self.salt.hex(),
                **SCRYPT_COST,
            }
        return document

    def _write_json(self, key: str, document: dict[str, Any]) -> None:
        with self.store.open_write(key) as handle:
            handle.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def _erase_task(
    store: ErasableStore, matcher: Matcher, rejected_prefix: str, current: set[str], key: str
) -> ObjectResult:
    return erase_object(store, matcher, rejected_prefix, key, rewrite=key in current)


def _rebuild_task(store: ErasableStore, settings: Settings, job: date | str) -> Rebuilt:
    """A raw key's CSV part, or a day's daily file."""
    if isinstance(job, str):
        return rebuild_part(store, settings, job)
    return rebuild_daily(store, settings, job)
