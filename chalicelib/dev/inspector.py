"""The dev stage's event inspector: the last stored and rejected events, in memory, over /_dev.

Like Snowplow Micro for this pipeline: an app's end-to-end test clears the lists,
clicks, and asserts what its tracking sent::

    GET    /_dev/events?limit=N&metricName=M  → {"events": [...]}    stored records, newest first
           (&format=rows                      → {"columns", "rows"}  the same as CSV cells)
    GET    /_dev/rejected?limit=N             → {"rejected": [...]}  refused events and bodies
    DELETE /_dev/events                       → clears both lists (never the files)

``Inspector`` is a ``Collector`` observer; ``inspector_routes`` is the blueprint
``app.py`` registers in the dev stage only, so the routes do not exist in prod.
Both lists are bounded (``MAX_KEPT`` items, ``MAX_INSPECTOR_BYTES``), the oldest going first, and
hold JSON bytes only: the bound counts what the process keeps (a parsed object costs 5 to 25
times its JSON, which let 8 MiB of rejected events take 200 MB). CORS is the stage's list;
with ``*`` (the dev stage) only pages on this machine (localhost, 127.0.0.1, [::1]) may read or
clear the lists, and a request from any other page's origin is refused (403).
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from chalice.app import Blueprint, Response

from chalicelib.csv.columns import flatten_record, order_columns
from chalicelib.ingest.cors import JSON_HEADERS, cors_headers, preflight_headers
from chalicelib.ingest.messages import shown
from chalicelib.ingest.strictjson import json_bytes
from chalicelib.rejects.record import (
    BODY,
    BODY_BYTES,
    BODY_ENCODING,
    CONTENT_TYPE,
    EVENT,
    EVENT_TEXT,
    INDEX,
    MAX_KEPT_REJECT_BYTES,
    REASON,
    RECEIVED_AT,
    REQUEST_ID,
    STATUS,
)

MAX_KEPT = 1000
# Per list: the bytes of its items plus ITEM_OVERHEAD_BYTES each (the bytes object, its tuple
# and deque slot), so the two lists together hold at most about 2 x 16 MiB.
MAX_INSPECTOR_BYTES = 16 * 1024 * 1024
ITEM_OVERHEAD_BYTES = 128
DEFAULT_LIMIT = 100
# A rejected event is shown whole up to this size, else as the start of its JSON text.
MAX_SHOWN_EVENT_BYTES = 8 * 1024
# The first characters of a body refused whole (400, 413, 415).
MAX_SHOWN_BODY_CHARS = 2048
INSPECTOR_METHODS = "GET, DELETE, OPTIONS"
_LOOPBACK_ORIGIN = re.compile(r"https?://(?:localhost|127\.0\.0\.1|\[::1\])(?::[0-9]{1,5})?")


class BadQuery(ValueError):
    """A query parameter the inspector cannot use; the message says which and why."""


class _Ring:
    """The newest JSON texts within a count and a byte budget; thread-safe."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self._items: deque[tuple[int, bytes]] = deque()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lock = threading.Lock()

    def extend(self, items: Sequence[bytes]) -> None:
        with self._lock:
            for item in items:
                size = len(item) + ITEM_OVERHEAD_BYTES
                self._items.append((size, item))
                self._bytes += size
            while self._items and (
                len(self._items) > self._max_items or self._bytes > self._max_bytes
            ):
                self._bytes -= self._items.popleft()[0]

    def newest_first(self) -> list[bytes]:
        with self._lock:
            return [item for _, item in reversed(self._items)]

    def clear(self) -> int:
        with self._lock:
            count = len(self._items)
            self._items.clear()
            self._bytes = 0
            return count


class Inspector:
    """Keeps what the route stored (as stored) and refused (as shown to people)."""

    def __init__(self, max_items: int = MAX_KEPT, max_bytes: int = MAX_INSPECTOR_BYTES) -> None:
        self._stored = _Ring(max_items, max_bytes)
        self._rejected = _Ring(max_items, max_bytes)

    # --- CollectObserver: called after each request, so this stays cheap -------------------

    def stored(self, records: Sequence[bytes]) -> None:
        self._stored.extend([record.rstrip(b"\n") for record in records])

    def rejected(self, records: Sequence[dict[str, Any]]) -> None:
        # A copy: orjson's result keeps the capacity it grew to (about 256 KiB for an
        # 8 KiB item), which the ring would hold for as long as the item.
        self._rejected.extend(
            [bytes(memoryview(json_bytes(rejected_item(record)))) for record in records]
        )

    # --- what the routes answer ------------------------------------------------------------

    def events_json(self, limit: int, metric_name: str | None = None) -> str:
        """``{"events": [...]}`` with each record's stored bytes, newest first."""
        chosen = self._chosen(limit, metric_name)
        return '{"events":[' + ",".join(line.decode("utf-8") for line in chosen) + "]}"

    def rows(self, limit: int, metric_name: str | None = None) -> dict[str, Any]:
        """The same events as CSV cells: ``{"columns": [...], "rows": [[...], ...]}``,
        by the converter's own rules (column order, flattening, formula neutralising)."""
        flat = [flatten_record(json.loads(line)) for line in self._chosen(limit, metric_name)]
        columns = order_columns({name for row in flat for name in row})
        return {"columns": columns, "rows": [[row.get(c, "") for c in columns] for row in flat]}

    def _chosen(self, limit: int, metric_name: str | None) -> list[bytes]:
        chosen: list[bytes] = []
        for line in self._stored.newest_first():
            if len(chosen) == limit:
                break
            if metric_name is None or _metric_name(line) == metric_name:
                chosen.append(line)
        return chosen

    def rejected_json(self, limit: int) -> str:
        """``{"rejected": [...]}``, newest first, from the kept JSON texts."""
        chosen = self._rejected.newest_first()[:limit]
        return '{"rejected":[' + ",".join(item.decode("utf-8") for item in chosen) + "]}"

    def rejections(self, limit: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.rejected_json(limit))["rejected"]
        return items

    def clear(self) -> dict[str, int]:
        return {"events": self._stored.clear(), "rejected": self._rejected.clear()}


def rejected_item(record: Mapping[str, Any]) -> dict[str, Any]:
    """A reject record (``chalicelib.rejects.record``) as the inspector lists it, bounded in size.

    An event: ``{"receivedAt", "requestId", "index", "error", "event"}`` (the event as
    sent; past 8 KiB ``event`` is null and ``eventText`` holds the start of its JSON).
    A body refused whole: ``index`` and ``event`` null, with ``status``, ``contentType``,
    ``bodyBytes`` and the start of ``body``.
    """
    item: dict[str, Any] = {
        "receivedAt": record.get(RECEIVED_AT),
        "requestId": record.get(REQUEST_ID),
        "index": record.get(INDEX),
        "error": record.get(REASON),
        "event": None,
    }
    if STATUS in record:  # the whole body was refused
        body = str(record.get(BODY, ""))
        item.update(
            status=record[STATUS],
            contentType=record.get(CONTENT_TYPE),
            bodyBytes=record.get(BODY_BYTES),
            bodyEncoding=record.get(BODY_ENCODING),
            body=body[:MAX_SHOWN_BODY_CHARS],
            # The record itself keeps a body's first 64 KiB.
            bodyTruncated=len(body) > MAX_SHOWN_BODY_CHARS
            or int(record.get(BODY_BYTES) or 0) > MAX_KEPT_REJECT_BYTES,
        )
        return item
    text = record.get(EVENT_TEXT)
    if text is None:
        encoded = json_bytes(record.get(EVENT))
        if len(encoded) <= MAX_SHOWN_EVENT_BYTES:
            item["event"] = record.get(EVENT)
            return item
        text = encoded.decode("utf-8", errors="replace")
    item.update(eventText=str(text)[:MAX_SHOWN_EVENT_BYTES], eventTruncated=True)
    return item


def parse_query(
    params: Mapping[str, str] | None, known: Sequence[str] = ("limit",)
) -> dict[str, str]:
    """The query parameters, refusing any the route does not know (a typo would
    otherwise filter nothing, and a test would pass for the wrong reason)."""
    given = dict(params or {})
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise BadQuery(
            f"unknown query parameter {shown(unknown[0], 40)!r}: this route takes "
            + ", ".join(known)
        )
    return given


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_KEPT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_KEPT}, got {shown(raw, 40)!r}")
    return int(raw)


def inspector_origins(origin: str | None, allowed_origins: tuple[str, ...]) -> tuple[str, ...]:
    """The origins the inspector lets ``origin`` be: the stage's list, except that ``*``
    (the dev stage) stands for pages on this machine only. What the events hold is for
    the developer's own pages and tests, not for any site their browser has open."""
    if "*" not in allowed_origins:
        return allowed_origins
    return (origin,) if origin and _LOOPBACK_ORIGIN.fullmatch(origin) else ()


def inspector_routes(inspector: Inspector, allowed_origins: tuple[str, ...]) -> Blueprint:
    """``/_dev/events`` (GET, DELETE, OPTIONS) and ``/_dev/rejected`` (GET). A request from
    a page whose origin the inspector does not allow is refused (403); one without Origin
    (curl, a test runner) is answered."""
    routes = Blueprint(__name__)

    def origin_of() -> str | None:
        request = routes.current_request
        return request.headers.get("origin") if request is not None else None

    def answer(status: int, body: str) -> Response:
        origin = origin_of()
        headers = {
            **JSON_HEADERS,
            **cors_headers(origin, inspector_origins(origin, allowed_origins)),
        }
        return Response(body=body, status_code=status, headers=dict(headers))

    def refused() -> Response | None:
        origin = origin_of()
        if origin is None or origin in inspector_origins(origin, allowed_origins):
            return None
        message = (
            f"origin {shown(origin)} may not read or clear the inspector: it answers this "
            "stage's ALLOWED_ORIGINS (with *, pages on localhost, 127.0.0.1 or [::1] only)"
        )
        return answer(403, json.dumps({"message": message}))

    def query(known: Sequence[str]) -> dict[str, str]:
        request = routes.current_request
        return parse_query(request.query_params if request is not None else None, known)

    def guarded(make_body: Callable[[], str]) -> Response:
        refusal = refused()
        if refusal is not None:
            return refusal
        try:
            return answer(200, make_body())
        except BadQuery as exc:
            return answer(400, json.dumps({"message": str(exc)}))

    @routes.route("/_dev/events", methods=["GET"])
    def dev_events() -> Response:
        def body() -> str:
            given = query(("limit", "metricName", "format"))
            limit, metric = parse_limit(given.get("limit")), given.get("metricName")
            shape = given.get("format", "records")
            if shape == "rows":
                return json.dumps(inspector.rows(limit, metric))
            if shape != "records":
                raise BadQuery(f"format must be records or rows, got {shown(shape, 40)!r}")
            return inspector.events_json(limit, metric)

        return guarded(body)

    @routes.route("/_dev/rejected", methods=["GET"])
    def dev_rejected() -> Response:
        def body() -> str:
            return inspector.rejected_json(parse_limit(query(("limit",)).get("limit")))

        return guarded(body)

    @routes.route("/_dev/events", methods=["DELETE"])
    def dev_clear() -> Response:
        return guarded(lambda: json.dumps({"cleared": inspector.clear()}))

    @routes.route("/_dev/events", methods=["OPTIONS"])
    def dev_events_preflight() -> Response:
        refusal = refused()
        if refusal is not None:
            return refusal
        origin = origin_of()
        allowed = inspector_origins(origin, allowed_origins)
        headers = preflight_headers(origin, allowed, INSPECTOR_METHODS)
        return Response(body="", status_code=204, headers=dict(headers))

    return routes


def _metric_name(line: bytes) -> Any:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:  # a number orjson cannot hold; the stdlib can
        record = json.loads(line)
    return record.get("metricName") if isinstance(record, dict) else None
