"""The erasure run: scan, plan (pending manifest), rewrite, rebuild the CSVs, audit."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

import orjson

from chalicelib.config import Settings
from chalicelib.erase.rebuild import Rebuilt, day_of, rebuild_daily, rebuild_part
from chalicelib.erase.request import (
    AUDIT_VERSION,
    SCRYPT_COST,
    Advance,
    ErasureError,
    ErasureRequest,
    Matcher,
    Progress,
    no_progress,
)
from chalicelib.erase.rewrite import (
    ObjectResult,
    Removed,
    damaged_message,
    erase_object,
    scan_object,
)
from chalicelib.layout import (
    ERASURE_PREFIX,
    day_prefix,
    days_between,
    erasure_audit_key,
    erasure_pending_key,
    erasure_pending_prefix,
)
from chalicelib.storage.base import ErasableStore
from chalicelib.workers import process_pool

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
            pool = process_pool(self.count)
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

    settings: Settings  # raw/, csv/, errors/, rejected/ and how CSVs are written
    erasure_prefix: str = ERASURE_PREFIX

    @property
    def rejected_prefix(self) -> str:
        return self.settings.rejected_prefix

    def pending_prefix(self) -> str:
        return erasure_pending_prefix(self.erasure_prefix)

    def pending_key(self, run_id: str) -> str:
        return erasure_pending_key(self.erasure_prefix, run_id)

    def audit_key(self, run_id: str) -> str:
        return erasure_audit_key(self.erasure_prefix, run_id)


@dataclass
class ErasureReport:
    """What one erasure run did (or, dry, would do): per object, the CSVs rebuilt, the audit."""

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
        return Removed.sum(self.objects)


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
        day_prefix(p, d) for p in (layout.settings.raw_prefix, layout.rejected_prefix) for d in days
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
    pending, others = _pending_manifests(store, layout, request)
    scan = partial(scan_object, store, matcher, layout.rejected_prefix)
    scanned = workers.map(scan, keys, progress, "scanning")
    # A request's rejects hold a large batch context once; the others name it
    # (contextOf). Those whose context matched are found by a second look at rejected/.
    contexts = {c for r in scanned for c in r.contexts}
    contexts.update(tuple(c) for c in (pending or {}).get("sharedContexts", []))
    if contexts:
        matcher = dataclasses.replace(matcher, shared_contexts=frozenset(contexts))
        scan = partial(scan_object, store, matcher, layout.rejected_prefix)
        again = workers.map(scan, rejected, progress, "scanning rejected/ for shared contexts")
        scanned = [*scanned[: len(keys) - len(rejected)], *again]
    found = [r for r in scanned if r.removed.total]
    for result in found:
        if result.damaged:
            raise ErasureError(damaged_message(store, result.key, result.damaged))
    notes = [
        f"{store.describe(r.key)} could not be read to its end ({r.damaged}); "
        "what could be read holds no match, and it was left as it is"
        for r in scanned
        if r.damaged
    ]
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
            "removed": Removed.sum(plan.values()).as_json(),
            "objects": [
                {"key": r.key, "kind": r.kind, **r.removed.as_json()} for r in plan.values()
            ],
        }
        if state == "pending":
            # Which rejected records' contexts matched (ids, no values): a run taken up
            # again still erases the records naming a context it already erased.
            document["sharedContexts"] = [list(c) for c in sorted(self.matcher.shared_contexts)]
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
