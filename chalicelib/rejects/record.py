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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from chalicelib.ingest.messages import shown
from chalicelib.ingest.strictjson import json_bytes
from chalicelib.ingest.validate import SCHEMA_PATH, Rejection

# The field names of both record kinds: every module that writes or reads a record uses these.
RECEIVED_AT = "receivedAt"
REQUEST_ID = "requestId"
REASON = "reason"
SCHEMA_VERSION_FIELD = "schemaVersion"
INDEX = "index"  # event records only: a body record has none
EVENT = "event"
EVENT_TEXT = "eventText"
EVENT_TRUNCATED = "eventTruncated"
CONTEXT = "context"
CONTEXT_OF = "contextOf"
SENT_AT = "sentAt"
SERVER = "server"
STATUS = "status"  # body records only
CONTENT_TYPE = "contentType"
BODY_BYTES = "bodyBytes"
BODY = "body"
BODY_ENCODING = "bodyEncoding"

# How much of a rejected event's JSON, or of a refused body, a record keeps.
MAX_KEPT_REJECT_BYTES = 64 * 1024
# A batch context larger than this is kept once per request, in the record of its first
# rejected event; the request's other records name that record (``"contextOf": index``).
# Otherwise 500 rejected events would copy a 500 KB context 500 times.
SHARED_CONTEXT_BYTES = 1024
SCHEMA_VERSION = hashlib.sha256(Path(SCHEMA_PATH).read_bytes()).hexdigest()[:12]
# ``kept_event``'s answer for an event of which only the first 64 KiB of JSON were kept.
CUT = object()


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
            RECEIVED_AT: received_at,
            REQUEST_ID: request_id,
            REASON: rejection.error,
            SCHEMA_VERSION_FIELD: SCHEMA_VERSION,
            INDEX: rejection.index,
            **_event_fields(event),
        }
        if first is None or not large:
            record[CONTEXT] = context
            first = rejection.index
        else:
            record[CONTEXT_OF] = first
        if SENT_AT in body:
            record[SENT_AT] = body[SENT_AT]
        if server_fields:
            record[SERVER] = server_fields
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
    head = raw[:MAX_KEPT_REJECT_BYTES]
    text = _utf8_prefix(head, cut=len(raw) > len(head))
    record: dict[str, Any] = {
        RECEIVED_AT: received_at,
        REQUEST_ID: request_id,
        REASON: reason,
        STATUS: status,
        SCHEMA_VERSION_FIELD: SCHEMA_VERSION,
        CONTENT_TYPE: shown(content_type or ""),
        BODY_BYTES: len(raw),
        BODY: text if text is not None else base64.b64encode(head).decode("ascii"),
        BODY_ENCODING: "text" if text is not None else "base64",
    }
    if server_fields:
        record[SERVER] = server_fields
    return record


def encode(records: Sequence[dict[str, Any]]) -> list[bytes]:
    """Newline-terminated JSON lines, as sinks take them."""
    return [json_bytes(record) + b"\n" for record in records]


def _event_fields(event: Any) -> dict[str, Any]:
    """The event as sent when it fits in 64 KiB, else its JSON text cut to 64 KiB."""
    try:
        size = len(orjson.dumps(event))
    except orjson.JSONEncodeError:  # lone surrogates, integers past 64 bits
        size = MAX_KEPT_REJECT_BYTES + 1
    if size <= MAX_KEPT_REJECT_BYTES:
        return {EVENT: event}
    text = json.dumps(event, ensure_ascii=True)
    return {
        EVENT_TEXT: text[:MAX_KEPT_REJECT_BYTES],
        EVENT_TRUNCATED: len(text) > MAX_KEPT_REJECT_BYTES,
    }


def _utf8_prefix(data: bytes, cut: bool) -> str | None:
    """``data`` as text if it is UTF-8; when ``cut``, a character cut at the end is dropped."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Only an unfinished last character (at most 3 bytes) can come of the cut.
        if cut and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
        return None


# --- reading a stored record -------------------------------------------------------------


def is_body_record(record: dict[str, Any]) -> bool:
    """A body refused whole has no event index."""
    return INDEX not in record


def kept_event(record: dict[str, Any]) -> Any:
    """The event of an event record as sent, or ``CUT`` when only its first 64 KiB of JSON
    were kept. KeyError/ValueError when the record holds neither."""
    if EVENT in record:
        return record[EVENT]
    if record.get(EVENT_TRUNCATED) is False:  # kept as text only because orjson refused it
        return json.loads(record[EVENT_TEXT])
    return CUT


def kept_event_text(record: dict[str, Any], as_text: Callable[[Any], str]) -> str | None:
    """The event as JSON text (``as_text`` writes a whole one), cut or not; None if none."""
    if EVENT in record:
        return as_text(record[EVENT])
    if EVENT_TEXT in record:
        return str(record[EVENT_TEXT])
    return None


def kept_body(record: dict[str, Any]) -> bytes | None:
    """The bytes of a body record's body, or None when only its first 64 KiB were kept.
    ValueError (binascii.Error) when a base64 body is not base64."""
    text = record[BODY]
    raw = (
        base64.b64decode(text, validate=True)
        if record.get(BODY_ENCODING) == "base64"
        else text.encode()
    )
    return raw if record.get(BODY_BYTES) == len(raw) else None
