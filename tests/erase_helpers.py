"""A small lake for the erasure tests: raw objects (gzip and plain), rejected objects,
their CSV parts, daily files and errors objects, in a local folder or an S3 bucket.

Every record or line that a request for session ``sess-1`` (27-28 Nov) must erase
holds the text ``gone-``; nothing else does. So "exactly the matching events" is:
no object anywhere holds ``gone-`` afterwards, and every ``kept-`` record is still there.
"""

from __future__ import annotations

import base64
import functools
import gzip
import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from chalicelib.config import Settings
from chalicelib.erase import ErasureRequest, Layout, erase
from chalicelib.jobs import build_daily_csv, convert_raw_object
from chalicelib.storage.base import ErasableStore
from chalicelib.storage.local import LocalStore

DAY1 = date(2026, 11, 27)
DAY2 = date(2026, 11, 28)
SESSION = "sess-1"
SETTINGS = Settings()
LAYOUT = Layout(SETTINGS)


def record(event_id: str, session: str = "sess-2", **extra: Any) -> bytes:
    body = {
        "eventId": event_id,
        "timestamp": 1795000000000,
        "sessionId": session,
        "metricName": "ContentElementInteraction",
        "value": None,
        "demoContentId": "ButtonClicked-1",
        "metricAttributes": {"action": "click"},
        "device": "my-device",
        "language": "en_us",
        "serverTimestamp": "2026-11-27T10:00:00.000Z",
        **extra,
    }
    return orjson.dumps(body)


def line(event_id: str, session: str = "sess-2", **extra: Any) -> bytes:
    return record(event_id, session, **extra) + b"\n"


RAW_A = b"".join(
    [
        line("gone-1", SESSION),
        line("kept-1"),
        b"not json at all, mentions sess-1 gone-bad\n",
        b"plain junk kept-junk\n",
        # Two objects on one line: the first goes, the second stays byte for byte.
        record("gone-2", SESSION) + b" " + record("kept-2", "sess-3") + b"\n",
        # The value elsewhere than in sessionId is not a match.
        line("kept-3", metricAttributes={"note": "sess-1"}),
        # sessionId spelled with JSON escapes.
        b'{"eventId":"gone-3","sessionId":"\\u0073ess-1","timestamp":1}\r\n',
        line("kept-4", "sess-12"),
    ]
)
RAW_B = b"".join([line("kept-5"), line("gone-4", SESSION), line("kept-6", device="kiosk-17")])
# Its only bad line goes: its errors/ objects must go with it.
RAW_C = line("gone-5", SESSION, serverTimestamp="2026-11-28T00:10:00.000Z") + b"sess-1 gone-bad2\n"
RAW_D = line("kept-7", serverTimestamp="2026-11-28T05:00:00.000Z")
RAW_OUTSIDE = line("kept-outside", SESSION, serverTimestamp="2026-11-26T23:00:00.000Z")


def _reject(**fields: Any) -> bytes:
    base = {"receivedAt": "2026-11-27T10:00:00.000Z", "requestId": "r", "schemaVersion": 1}
    return orjson.dumps({**base, **fields}) + b"\n"


# One JSON per line, as the rejected-events sink writes them; those named "gone" go.
REJECTED = {
    "gone-event": _reject(
        reason="metricName missing",
        index=0,
        event={"sessionId": SESSION, "eventId": "gone-r1"},
        context={"device": "my-device"},
    ),
    "kept-event": _reject(
        reason="metricName missing",
        index=1,
        event={"sessionId": "sess-2", "eventId": "kept-r1"},
        context={"device": "my-device"},
    ),
    # Not JSON (cut): the session id as a quoted string in its text is what makes it go.
    "gone-text-body": _reject(
        reason="not JSON",
        status=400,
        body='{"sessionId": "sess-1", "x": "gone-body',
        bodyEncoding="text",
    ),
    "gone-base64-body": _reject(
        reason="not UTF-8",
        status=400,
        body=base64.b64encode(b'\xff{"sessionId":"sess-1","note":"gone-b64"}').decode(),
        bodyEncoding="base64",
    ),
    "kept-body": _reject(reason="not JSON", status=400, body="{kept-body", bodyEncoding="text"),
    # Holding the id only inside a longer string (sess-1 is not sess-12): kept.
    "kept-text-body": _reject(
        reason="not JSON", status=400, body='{"x": "sess-12 kept-body2', bodyEncoding="text"
    ),
}


RAW_OBJECTS = {
    "raw/2026/11/26/23/outside.ndjson": RAW_OUTSIDE,
    "raw/2026/11/27/10/a.gz": RAW_A,
    "raw/2026/11/27/11/b.ndjson": RAW_B,
    "raw/2026/11/28/00/c.gz": RAW_C,
    "raw/2026/11/28/05/d.gz": RAW_D,
}
REJECTED_KEY = "rejected/2026/11/27/10/rejected-1.ndjson"


@functools.cache
def _lake() -> dict[str, bytes]:
    """The lake and every CSV the pipeline would have made from it, made once."""
    root = Path(tempfile.mkdtemp(prefix="erase-lake-"))
    try:
        store = LocalStore(root)
        for key, data in RAW_OBJECTS.items():
            with store.open_write(key) as handle:
                handle.write(gzip.compress(data, mtime=0) if key.endswith(".gz") else data)
        with store.open_write(REJECTED_KEY) as handle:
            handle.write(b"".join(REJECTED.values()))
        for key in RAW_OBJECTS:
            convert_raw_object(store, key, SETTINGS)
        for day in (date(2026, 11, 26), DAY1, DAY2):
            build_daily_csv(store, day, SETTINGS)
        return local_snapshot(root)
    finally:
        shutil.rmtree(root)


def fill(store: ErasableStore) -> None:
    """Write the lake, with its CSVs and errors objects, into ``store``."""
    for key, data in _lake().items():
        with store.open_write(key) as handle:
            handle.write(data)


def request(**criteria: Any) -> ErasureRequest:
    if not criteria:
        criteria = {"session_ids": [SESSION]}
    return ErasureRequest.build(first=DAY1, last=DAY2, **criteria)


def plain(key: str, data: bytes) -> bytes:
    return gzip.decompress(data) if key.endswith(".gz") and data else data


def local_snapshot(root: Path, *, with_erasure: bool = False) -> dict[str, bytes]:
    """Every object under ``root`` (temporary files excluded) as stored."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        wanted = with_erasure or not key.startswith("erasure/")
        if wanted and path.is_file() and not path.name.startswith(".tmp-"):
            found[key] = path.read_bytes()
    return found


def rebuilt_reference(raw: dict[str, bytes], tmp: Path) -> dict[str, bytes]:
    """What the pipeline makes from these raw objects in a fresh folder."""
    store = LocalStore(tmp)
    for key, data in raw.items():
        with store.open_write(key) as handle:
            handle.write(data)
    for key in raw:
        convert_raw_object(store, key, SETTINGS)
    for day in (date(2026, 11, 26), DAY1, DAY2):
        build_daily_csv(store, day, SETTINGS)
    return local_snapshot(tmp)


def s3_current(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every current object of the bucket but the erasure records, as stored."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            if not item["Key"].startswith("erasure/"):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[item["Key"]] = body
    return found


@functools.cache
def erased_lake() -> dict[str, bytes]:
    """The lake after erasing the session, on a folder: what every other run must match."""
    root = Path(tempfile.mkdtemp(prefix="erased-lake-"))
    try:
        fill(LocalStore(root))
        erase(LocalStore(root), request(), LAYOUT)
        return local_snapshot(root)
    finally:
        shutil.rmtree(root)
