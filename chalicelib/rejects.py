"""What the route refused, as records: kept so it can be counted, inspected and replayed.

One record per rejected event::

    {"receivedAt", "requestId", "reason", "schemaVersion", "index",
     "event" (as sent; or "eventText", its JSON cut to 64 KiB, when too big to keep whole),
     "context" (the batch's), "sentAt" (the batch's, when sent),
     "server" (the fields the server added to the request's records: user agent,
     country, bot flag)}

(a context over 1 KiB is kept in the request's first record only; the others hold
``"contextOf"``: that record's index, so the records of one request stay about the size of
its body)

and one per body refused whole (400, 413, 415)::

    {"receivedAt", "requestId", "reason", "status", "schemaVersion", "contentType",
     "bodyBytes", "body" (its first 64 KiB), "bodyEncoding" ("text" or "base64"),
     "server" (what the request's headers said: user agent, country, bot flag; the
     stage's bot rule is applied when it is replayed)}

``receivedAt`` is the ``serverTimestamp`` the request's accepted events got, so a
replayed event keeps it. ``schemaVersion`` is a hash of the schema file: a replay
can tell which contract refused an event.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from chalicelib.ingest.messages import shown
from chalicelib.ingest.strictjson import json_bytes
from chalicelib.ingest.validate import SCHEMA_PATH, Rejection

MAX_KEPT_BYTES = 64 * 1024
# A batch context larger than this is kept once per request, in the record of its first
# rejected event; the request's other records name that record (``"contextOf": index``).
# Otherwise 500 rejected events would copy a 500 KB context 500 times.
SHARED_CONTEXT_BYTES = 1024
SCHEMA_VERSION = hashlib.sha256(Path(SCHEMA_PATH).read_bytes()).hexdigest()[:12]


def event_rejects(
    *,
    received_at: str,
    request_id: str,
    body: dict[str, Any],
    rejections: Iterable[Rejection],
    server_fields: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """One record per rejected event of a batch that was read; ``server_fields`` (what
    the server added to the request's records) go along, for replay."""
    events = body.get("events")
    context = body.get("context")
    context = context if isinstance(context, dict) else {}
    large = len(json_bytes(context)) > SHARED_CONTEXT_BYTES
    records = []
    first: int | None = None
    for rejection in rejections:
        event = events[rejection.index] if isinstance(events, list) else None
        record: dict[str, Any] = {
            "receivedAt": received_at,
            "requestId": request_id,
            "reason": rejection.error,
            "schemaVersion": SCHEMA_VERSION,
            "index": rejection.index,
            **_kept_event(event),
        }
        if first is None or not large:
            record["context"] = context
            first = rejection.index
        else:
            record["contextOf"] = first
        if "sentAt" in body:
            record["sentAt"] = body["sentAt"]
        if server_fields:
            record["server"] = server_fields
        records.append(record)
    return records


def body_reject(
    *,
    received_at: str,
    request_id: str,
    status: int,
    reason: str,
    raw: bytes,
    content_type: str | None,
    server_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a body refused whole: the reason and the body's first 64 KiB, and
    what the request's headers said (``server_fields``), for replay."""
    head = raw[:MAX_KEPT_BYTES]
    text = _utf8_prefix(head, cut=len(raw) > len(head))
    record: dict[str, Any] = {
        "receivedAt": received_at,
        "requestId": request_id,
        "reason": reason,
        "status": status,
        "schemaVersion": SCHEMA_VERSION,
        "contentType": shown(content_type or ""),
        "bodyBytes": len(raw),
        "body": text if text is not None else base64.b64encode(head).decode("ascii"),
        "bodyEncoding": "text" if text is not None else "base64",
    }
    if server_fields:
        record["server"] = server_fields
    return record


def encode(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """Newline-terminated JSON lines, as sinks take them."""
    return [json_bytes(record) + b"\n" for record in records]


def _kept_event(event: Any) -> dict[str, Any]:
    """The event as sent when it fits in 64 KiB, else its JSON text cut to 64 KiB."""
    try:
        size = len(orjson.dumps(event))
    except orjson.JSONEncodeError:  # lone surrogates, integers past 64 bits
        size = MAX_KEPT_BYTES + 1
    if size <= MAX_KEPT_BYTES:
        return {"event": event}
    text = json.dumps(event, ensure_ascii=True)
    return {"eventText": text[:MAX_KEPT_BYTES], "eventTruncated": len(text) > MAX_KEPT_BYTES}


def _utf8_prefix(data: bytes, cut: bool) -> str | None:
    """``data`` as text if it is UTF-8; when ``cut``, a character cut at the end is dropped."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Only an unfinished last character (at most 3 bytes) can come of the cut.
        if cut and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
        return None
