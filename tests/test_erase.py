"""chalicelib.erase on a local folder and on a moto S3 server (versioned buckets included)."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest

from chalicelib.config import Settings
from chalicelib.erase import (
    ErasureError,
    ErasureRequest,
    Layout,
    Matcher,
    Removed,
    Workers,
    erase,
    value_text,
)
from chalicelib.erase import run as erase_module
from chalicelib.jobs import convert_raw_object
from chalicelib.storage.base import ErasableStore
from chalicelib.storage.local import LocalStore
from chalicelib.storage.s3 import S3Store
from tests.conftest import REPO_ROOT
from tests.erase_helpers import (
    DAY1,
    DAY2,
    LAYOUT,
    REJECTED,
    REJECTED_KEY,
    SESSION,
    SETTINGS,
    erased_lake,
    fill,
    line,
    local_snapshot,
    plain,
    rebuilt_reference,
    record,
    request,
    s3_current,
)

A, B, C = "raw/2026/11/27/10/a.gz", "raw/2026/11/27/11/b.ndjson", "raw/2026/11/28/00/c.gz"
EXPECTED_A = b"".join(
    [
        line("kept-1"),
        b"plain junk kept-junk\n",
        record("kept-2", "sess-3") + b"\n",
        line("kept-3", metricAttributes={"note": "sess-1"}),
        line("kept-4", "sess-12"),
    ]
)
EXPECTED_B = line("kept-5") + line("kept-6", device="kiosk-17")
EXPECTED_REJECTED = REJECTED["kept-event"] + REJECTED["kept-body"] + REJECTED["kept-text-body"]
EXPECTED_REMOVED = {
    A: Removed(events=3, bad_lines=1),
    B: Removed(events=1),
    C: Removed(events=1, bad_lines=1),
    REJECTED_KEY: Removed(events=1, rejected_bodies=2),
}


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pending manifest's hash costs ~50 ms by design; the crash loop runs it often.
    monkeypatch.setattr(erase_module, "SCRYPT_COST", {"n": 2, "r": 1, "p": 1})


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    fill(LocalStore(root))
    return root


def audit_records(root: Path) -> list[dict[str, Any]]:
    return [orjson.loads(p.read_bytes()) for p in sorted((root / "erasure").rglob("*.json"))]


def without_times(document: dict[str, Any]) -> dict[str, Any]:
    varying = ("runId", "startedAt", "completedAt", "attempts", "lastAttempt")
    return {k: v for k, v in document.items() if k not in varying}


# --- what goes, what stays -----------------------------------------------------------


def test_erases_exactly_the_matching_events_from_a_folder(lake: Path, tmp_path: Path) -> None:
    before = local_snapshot(lake)
    report = erase(LocalStore(lake), request(), LAYOUT)
    after = local_snapshot(lake)

    assert plain(A, after[A]) == EXPECTED_A  # kept lines byte for byte, gzip stays gzip
    assert after[A][:2] == b"\x1f\x8b"
    assert after[B] == EXPECTED_B
    assert plain(C, after[C]) == b""
    assert after[REJECTED_KEY] == EXPECTED_REJECTED
    assert {r.key: r.removed for r in report.objects} == EXPECTED_REMOVED
    for key, data in after.items():
        assert b"gone-" not in plain(key, data), key
    # Objects without matches, and days outside the range, are not touched.
    changed = {key for key in before if before[key] != after.get(key)}
    assert changed == {
        A,
        B,
        C,
        REJECTED_KEY,
        "csv/parts/2026/11/27/10/a.csv",
        "csv/parts/2026/11/27/11/b.ndjson.csv",
        "csv/parts/2026/11/28/00/c.csv",
        "csv/2026-11-27_combined.csv",
        "csv/2026-11-28_combined.csv",
        "errors/parts/2026/11/27/10/a.jsonl",
        "errors/parts/2026/11/28/00/c.jsonl",
        "errors/daily/2026-11-27.jsonl",
        "errors/daily/2026-11-28.jsonl",
    }
    # The CSVs and errors objects are exactly what the pipeline makes from the new raw data
    # (the errors objects of c, whose only bad line went, are gone).
    raw_after = {k: v for k, v in after.items() if k.startswith("raw/")}
    assert {k: v for k, v in after.items() if not k.startswith("rejected/")} == rebuilt_reference(
        raw_after, tmp_path / "reference"
    )
    assert "errors/parts/2026/11/28/00/c.jsonl" not in after
    assert sorted(report.parts) == [
        "csv/parts/2026/11/27/10/a.csv",
        "csv/parts/2026/11/27/11/b.ndjson.csv",
        "csv/parts/2026/11/28/00/c.csv",
    ]
    assert report.daily == ["csv/2026-11-27_combined.csv", "csv/2026-11-28_combined.csv"]
    assert report.errors_deleted == [
        "errors/parts/2026/11/28/00/c.jsonl",
        "errors/daily/2026-11-28.jsonl",
    ]


def test_the_audit_record_holds_counts_never_values(lake: Path) -> None:
    report = erase(LocalStore(lake), request(session_ids=[SESSION], event_ids=["kept-1"]), LAYOUT)
    [audit] = audit_records(lake)
    assert report.audit == str(lake / LAYOUT.audit_key(report.run_id))
    assert audit["state"] == "complete" and audit["attempts"] == 1
    assert audit["request"] == {
        "valuesPerField": {"eventId": 1, "sessionId": 1},
        "from": "2026-11-27",
        "to": "2026-11-28",
        "locatedBy": "scan",
    }
    assert audit["removed"] == {"events": 7, "badLines": 2, "rejectedBodies": 2}
    assert audit["objects"][0] == {
        "key": A,
        "kind": "raw",
        "events": 4,
        "badLines": 1,
        "rejectedBodies": 0,
    }
    assert "requestFingerprint" not in audit
    text = b"".join(p.read_bytes() for p in (lake / "erasure").rglob("*") if p.is_file())
    assert SESSION.encode() not in text and b"kept-1" not in text
    assert not (lake / "erasure" / "pending").exists() or not any(
        (lake / "erasure" / "pending").iterdir()
    )


def test_a_second_run_removes_nothing_and_touches_nothing(lake: Path) -> None:
    erase(LocalStore(lake), request(), LAYOUT)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in lake.rglob("*") if p.is_file()}
    report = erase(LocalStore(lake), request(), LAYOUT)
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in lake.rglob("*") if p.is_file()}
    assert report.removed == Removed() and report.objects == []
    assert report.parts == [] and report.daily == []
    new = set(after) - set(before)
    assert [p.relative_to(lake).parts[0] for p in new] == ["erasure"]  # only its audit record
    assert {p: v for p, v in after.items() if p not in new} == before
    assert sorted(d["removed"]["events"] for d in audit_records(lake)) == [0, 6]


def test_dry_run_changes_nothing(lake: Path) -> None:
    before = local_snapshot(lake, with_erasure=True)
    report = erase(LocalStore(lake), request(), LAYOUT, dry_run=True)
    assert local_snapshot(lake, with_erasure=True) == before
    assert {r.key: r.removed for r in report.objects} == EXPECTED_REMOVED
    assert report.dry_run and report.audit == "" and report.scanned == 5


def test_days_outside_the_range_are_not_read(lake: Path) -> None:
    report = erase(
        LocalStore(lake), ErasureRequest.build(first=DAY2, last=DAY2, session_ids=[SESSION]), LAYOUT
    )
    assert [r.key for r in report.objects] == [C]
    assert b"gone-1" in gzip.decompress((lake / A).read_bytes())


@pytest.mark.parametrize(
    ("criteria", "gone"),
    [
        ({"event_ids": ["kept-5"]}, ["kept-5"]),
        ({"matches": [("device", "kiosk-17")]}, ["kept-6"]),
        # Several flags add up (OR).
        ({"event_ids": ["kept-5"], "matches": [("device", "kiosk-17")]}, ["kept-5", "kept-6"]),
        # A number compares as its JSON text; the string "7" compares as itself.
        ({"matches": [("value", "7")]}, ["n-int", "n-str"]),
        ({"matches": [("value", "7.5")]}, ["n-float"]),
        ({"matches": [("flag", "true")]}, ["n-int"]),
    ],
)
def test_match_semantics(tmp_path: Path, criteria: dict[str, Any], gone: list[str]) -> None:
    store = LocalStore(tmp_path)
    lines = {
        "kept-5": line("kept-5"),
        "kept-6": line("kept-6", device="kiosk-17"),
        "n-int": line("n-int", value=7, flag=True),
        "n-float": line("n-float", value=7.5),
        "n-str": line("n-str", value="7"),
        "n-big": line("n-big", value=17),
    }
    with store.open_write(B) as handle:
        handle.write(b"".join(lines.values()))
    erase(store, request(**criteria), LAYOUT)
    assert (tmp_path / B).read_bytes() == b"".join(v for k, v in lines.items() if k not in gone)


def test_value_text_and_prefilter() -> None:
    assert [value_text(v) for v in (7, 7.5, True, None, "x", {"a": [1]})] == [
        "7",
        "7.5",
        "true",
        "null",
        "x",
        '{"a":[1]}',
    ]
    assert Matcher.for_request(request()).prefilter
    # 1e1 is 10.0 and any spacing is the same object: such values are parsed everywhere.
    assert not Matcher.for_request(request(matches=[("value", "10.0")])).prefilter
    matcher = Matcher.for_request(request(matches=[("path", "/a/b")]))
    assert matcher.may_match(b'{"path":"\\/a\\/b"}') and not matcher.may_match(b'{"path":"/a"}')
    with pytest.raises(ErasureError, match="empty value"):
        request(session_ids=[""])
    with pytest.raises(ErasureError, match="nothing to look for"):
        request(session_ids=[])
    with pytest.raises(ErasureError, match="ends"):
        ErasureRequest.build(first=DAY2, last=DAY1, session_ids=["s"])


def test_a_damaged_object_holding_matches_stops_the_run_before_any_change(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with store.open_write(A) as handle:
        handle.write(gzip.compress(line("gone-1", SESSION) * 50)[:-30])  # truncated
    with store.open_write(B) as handle:
        handle.write(gzip.compress(line("kept-1") * 50)[:-30])
    before = local_snapshot(tmp_path, with_erasure=True)
    with pytest.raises(ErasureError, match="cannot be read to its end"):
        erase(store, request(), LAYOUT)
    assert local_snapshot(tmp_path, with_erasure=True) == before
    (tmp_path / A).unlink()
    report = erase(store, request(), LAYOUT)
    assert any("could not be read to its end" in note for note in report.notes)


def test_parallel_processes_give_the_same_result(tmp_path: Path) -> None:
    results = []
    for count in (1, 2):
        root = tmp_path / f"jobs-{count}"
        fill(LocalStore(root))
        erase(LocalStore(root), request(), LAYOUT, workers=Workers(count, processes=True))
        results.append(local_snapshot(root))
    assert results[0] == results[1]


# --- crash safety --------------------------------------------------------------------


class Killed(BaseException):
    """The process died here (a BaseException, as a signal's would be)."""


class DyingStore:
    """A store that dies at its n-th change, before that change is published (n=0: never).
    Counting changes with n=0 tells how many a whole run makes."""

    def __init__(self, inner: ErasableStore, n: int) -> None:
        self.inner, self.n, self.changes = inner, n, 0

    def _change(self, what: str) -> None:
        self.changes += 1
        if self.changes == self.n:
            raise Killed(what)

    def list_keys(self, prefix: str) -> list[str]:
        return self.inner.list_keys(prefix)

    def open_read(self, key: str) -> BinaryIO:
        return self.inner.open_read(key)

    @contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        with self.inner.open_write(key) as handle:
            yield handle
            self._change(f"write {key}")  # inside: the write is abandoned

    def describe(self, key: str) -> str:
        return self.inner.describe(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self._change(f"delete {key}")
        self.inner.delete(key)

    def purge_old_versions(self, key: str) -> int:
        self._change(f"purge {key}")
        return self.inner.purge_old_versions(key)

    def rewriting(self, key: str) -> AbstractContextManager[None]:
        return self.inner.rewriting(key)


def test_a_run_killed_at_any_change_and_run_again_ends_as_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    reference_root = tmp_path / "reference"
    fill(LocalStore(reference_root))
    counting = DyingStore(LocalStore(reference_root), 0)
    erase(counting, request(), LAYOUT)
    reference = local_snapshot(reference_root)
    [reference_audit] = audit_records(reference_root)
    assert counting.changes > 20
    for n in range(1, counting.changes + 1):
        root = tmp_path / f"killed-{n}"
        fill(LocalStore(root))
        with pytest.raises(Killed):
            erase(DyingStore(LocalStore(root), n), request(), LAYOUT)
        erase(LocalStore(root), request(), LAYOUT)
        assert local_snapshot(root) == reference, f"killed at change {n}"
        [audit] = audit_records(root)  # one record, pending manifest gone
        assert without_times(audit) == without_times(reference_audit), f"killed at change {n}"


def test_a_run_killed_by_sigkill_and_run_again_ends_as_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    reference_root = tmp_path / "reference"
    fill(LocalStore(reference_root))
    erase(LocalStore(reference_root), request(), LAYOUT)
    root = tmp_path / "killed"
    fill(LocalStore(root))
    # Dies by SIGKILL in the middle of its third write (the second raw object), after
    # the pending manifest and the first rewrite: no cleanup runs, a temporary file stays.
    script = (
        "import os, signal, sys\n"
        "from chalicelib.erase import erase\n"
        "from chalicelib.storage.local import LocalStore\n"
        "from tests.erase_helpers import LAYOUT, request\n"
        "class Store(LocalStore):\n"
        "    writes = 0\n"
        "    def open_write(self, key):\n"
        "        Store.writes += 1\n"
        "        if Store.writes == 3:\n"
        "            path = self.root / key\n"
        "            (path.parent / ('.tmp-' + path.name)).write_bytes(b'half')\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return super().open_write(key)\n"
        "erase(Store(sys.argv[1]), request(), LAYOUT)\n"
    )
    process = subprocess.run(
        [sys.executable, "-c", script, str(root)], cwd=REPO_ROOT, capture_output=True, check=False
    )
    assert process.returncode == -signal.SIGKILL, process.stderr
    assert list((root / "erasure" / "pending").iterdir())
    report = erase(LocalStore(root), request(), LAYOUT)
    assert report.resumed
    assert local_snapshot(root) == local_snapshot(reference_root)
    [audit] = audit_records(root)
    assert audit["attempts"] == 2
    assert without_times(audit) == without_times(audit_records(reference_root)[0])


def test_another_requests_pending_run_is_named_not_finished(lake: Path) -> None:
    with pytest.raises(Killed):
        erase(DyingStore(LocalStore(lake), 3), request(event_ids=["kept-1"]), LAYOUT)
    report = erase(LocalStore(lake), request(), LAYOUT)
    assert not report.resumed
    assert any("unfinished erasure of another request" in note for note in report.notes)
    assert len(os.listdir(lake / "erasure" / "pending")) == 1


# --- S3 ------------------------------------------------------------------------------

VERSIONED = "erase-versioned"


@pytest.fixture
def versioned(s3: Any) -> Iterator[str]:
    s3.create_bucket(Bucket=VERSIONED)
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    yield VERSIONED
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=VERSIONED):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=VERSIONED, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=VERSIONED)


def s3_versions(s3: Any, bucket: str) -> tuple[dict[str, list[bytes]], list[str]]:
    """Every version of every key (newest first), and the keys with delete markers."""
    versions: dict[str, list[bytes]] = {}
    markers = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
            versions.setdefault(item["Key"], []).append(body["Body"].read())
        markers += [m["Key"] for m in page.get("DeleteMarkers", [])]
    return versions, markers


def test_versioned_bucket_keeps_no_old_copy(s3: Any, versioned: str) -> None:
    store = S3Store(s3, versioned)
    fill(store)
    convert_raw_object(store, A, SETTINGS)  # a second version of a part, as a retry makes
    report = erase(store, request(), LAYOUT, workers=Workers(4))
    versions, markers = s3_versions(s3, versioned)
    assert markers == []
    for key, bodies in versions.items():
        assert len(bodies) == 1, f"{key} has {len(bodies)} versions"
        assert b"gone-" not in plain(key, bodies[0]), key
    assert s3_current(s3, versioned) == erased_lake()
    # Old versions of: raw a, b, c, rejected; parts a (written twice), b, c; the errors
    # of a (twice); the two days' files; the errors of the 27th. (The errors objects of
    # c and of the 28th are deleted whole, each version by id: no marker is left.)
    assert report.versions_deleted == 13
    assert report.errors_deleted == [
        "errors/parts/2026/11/28/00/c.jsonl",
        "errors/daily/2026-11-28.jsonl",
    ]
    second = erase(store, request(), LAYOUT, workers=Workers(4))
    assert second.removed == Removed() and second.versions_deleted == 0


def test_versioned_bucket_run_killed_and_run_again(s3: Any, versioned: str) -> None:
    store = S3Store(s3, versioned)
    fill(store)
    # Killed after raw a was rewritten, before its old version (holding the events) went.
    with pytest.raises(Killed):
        erase(DyingStore(store, 3), request(), LAYOUT)
    old, new = s3_versions(s3, versioned)[0][A][::-1]
    assert b"gone-" in plain(A, old) and b"gone-" not in plain(A, new)
    report = erase(store, request(), LAYOUT)
    assert report.resumed
    versions, markers = s3_versions(s3, versioned)
    assert markers == []
    assert all(
        len(bodies) == 1 for key, bodies in versions.items() if not key.startswith("erasure/")
    )
    assert [k for k in versions if k.startswith("erasure/")] == [LAYOUT.audit_key(report.run_id)]
    assert s3_current(s3, versioned) == erased_lake()


# --- rejected records found in review -------------------------------------------------------


def _rejects_from(root: Path, *bodies: bytes) -> LocalStore:
    """Rejected records exactly as the route keeps them, under root/rejected/."""
    import logging

    from chalicelib.config import Limits
    from chalicelib.ingest.collect import Collector
    from chalicelib.ingest.validate import BatchValidator
    from chalicelib.sinks import LocalDirectorySink

    collector = Collector(
        BatchValidator(Limits()),
        lambda: LocalDirectorySink(root, "raw/"),
        logging.getLogger("test-erase"),
        reject_sink_factory=lambda: LocalDirectorySink(root, "rejected/"),
    )
    for raw in bodies:
        collector.collect(raw, "application/json", "r")
    return LocalStore(root)


def _today_request(**values: list[str]) -> ErasureRequest:
    today = datetime.now(UTC).date()
    return ErasureRequest.build(first=today, last=today, **values)  # type: ignore[arg-type]


def test_a_rejected_event_kept_as_cut_text_is_erased_too(tmp_path: Path) -> None:
    big = {f"a{i}": "x" * 4000 for i in range(20)}  # over 64 KiB: kept as eventText
    events = [
        {
            "eventId": "e1",
            "timestamp": 1,
            "sessionId": "victim",
            "metricName": "m",
            "metricAttributes": big,
        },
        {
            "eventId": "e2",
            "timestamp": 1,
            "sessionId": "victim",
            "metricName": "m",
            "value": "not a number",
        },
    ]
    store = _rejects_from(tmp_path, json.dumps({"events": events}).encode())
    report = erase(store, _today_request(session_ids=["victim"]), Layout(Settings()))
    assert report.removed.events == 2
    assert not any(b"victim" in (tmp_path / k).read_bytes() for k in store.list_keys("rejected/"))


def test_a_body_refused_whole_goes_only_for_its_own_sessions(tmp_path: Path) -> None:
    def body(session: str) -> bytes:
        events = [{"eventId": "e", "timestamp": 1, "sessionId": session, "metricName": "m"}]
        return json.dumps({"context": {"Lang": 1, "lang": 2}, "events": events}).encode()

    store = _rejects_from(tmp_path, body("u100"), body("u1"), b'{"not json, u1')
    report = erase(store, _today_request(session_ids=["u1"]), Layout(Settings()))
    assert report.removed.rejected_bodies == 1  # u1's body; not u100's, not the bare text
    [key] = store.list_keys("rejected/")
    left = (tmp_path / key).read_text()
    assert "u100" in left and '\\"u1\\"' not in left


def test_a_part_under_the_old_name_goes_with_its_erased_events(tmp_path: Path) -> None:
    """Parts made before the part-name rule (x.ndjson → x.csv, now x.ndjson.csv) would
    keep the erased events: erase removes them."""
    raw = tmp_path / "raw" / "2026" / "11" / "27" / "10" / "x.ndjson"
    raw.parent.mkdir(parents=True)
    raw.write_bytes(b'{"eventId":"a","sessionId":"victim"}\n{"eventId":"b","sessionId":"s"}\n')
    store = LocalStore(tmp_path)
    convert_raw_object(store, "raw/2026/11/27/10/x.ndjson", Settings())
    legacy = tmp_path / "csv" / "parts" / "2026" / "11" / "27" / "10" / "x.csv"
    legacy.write_text("eventId,sessionId\r\na,victim\r\n")
    day = datetime(2026, 11, 27, tzinfo=UTC).date()
    erase(store, ErasureRequest.build(first=day, last=day, session_ids=["victim"]), LAYOUT)
    assert not legacy.exists()
    assert b"victim" not in (legacy.parent / "x.ndjson.csv").read_bytes()
