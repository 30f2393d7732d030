"""Validate one POST /events body (read by ``body.py``) and turn each valid event into its
stored record (the server's fields come in from ``enrich.py`` through a callback).

The JSON Schema in ``schema/events.schema.json`` is the contract. Compiled once (fastjsonschema
generates Python code from it, ~20x faster per event than an interpreting validator), it is
applied to the envelope, then to each event on its own, so a bad event is a value returned next
to the good ones and never sinks its batch. Only the body as a whole can fail (``BadRequest``).
The usual envelope and event are checked directly first (``shape.py``, a third of the cost);
what that leaves undecided, the compiled validator decides, and it words every error.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import fastjsonschema
import orjson

from chalicelib.config import Limits
from chalicelib.ingest.attributes import AttributeChecks, EventError
from chalicelib.ingest.body import BadRequest
from chalicelib.ingest.messages import bounded, case_collision, json_type, shown
from chalicelib.ingest.schema_messages import schema_message
from chalicelib.ingest.shape import EventShape
from chalicelib.ingest.strictjson import (
    keys_and_exact,
    strict_loads,
)

SCHEMA_PATH = Path(__file__).parent / "schema" / "events.schema.json"
# Largest epoch-ms value the schema admits; beyond it datetime cannot format.
_MAX_EPOCH_MS = 100_000_000_000_000
# Fields of a stored record that a context key may not name, in any letter case
# (Athena's column names are case-insensitive, and two spellings would be two CSV
# columns): the event's fields and what the server adds. The schema's propertyNames
# pattern is generated from this list (tests/test_schema.py checks it is).
RESERVED_FIELDS = (
    "eventId",
    "timestamp",
    "sessionId",
    "seq",
    "metricName",
    "value",
    "demoContentId",
    "metricAttributes",
    "context",
    "serverTimestamp",
    "derivedTimestamp",
    "uaBrowser",
    "uaBrowserVersion",
    "uaOs",
    "uaOsVersion",
    "uaDeviceType",
    "userAgent",
    "country",
    "isBot",
    "botReason",
)


@dataclass(frozen=True)
class Rejection:
    """One refused event of a batch: its index in ``events`` and why, for the answer."""

    index: int
    error: str


@dataclass
class BatchResult:
    """Newline-terminated stored records, ready for a sink, and the rejections."""

    records: list[bytes] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # Events not looked at because the request was dropped (a bot's, with DROP_BOTS).
    dropped: int = 0
    # What the server added to every record (user agent, country, bot flag), so that
    # kept rejects can give it back when they are replayed.
    server_fields: dict[str, Any] = field(default_factory=dict)
    # The keys the body held in all its objects, counted on the way (strictjson's count,
    # for a body from ``read_body``), or -1 when a float in it may be an integer orjson
    # could not hold.
    keys: int = 0


def load_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def context_key_pattern(reserved: tuple[str, ...] = RESERVED_FIELDS) -> str:
    """The schema's propertyNames pattern for context keys: an identifier of at most 64
    characters that is no reserved field in any letter case and does not start with
    attr_ (any case). One pattern with lookaheads: a 'not' costs an exception per key in
    compiled validators. Character classes, not a case-insensitive flag, because JSON
    Schema patterns are ECMA-262 regular expressions, which have no inline flags."""

    def any_case(word: str) -> str:
        return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)

    names = "|".join(any_case(name) for name in reserved)
    return f"^(?!(?:{names})$)(?!{any_case('attr_')})[A-Za-z][A-Za-z0-9_]{{0,63}}$"


@functools.lru_cache(maxsize=256)
def _iso_second(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@functools.lru_cache(maxsize=256)
def _iso_second_bytes(epoch_seconds: int) -> bytes:
    return _iso_second(epoch_seconds).encode()


# The end of derivedTimestamp for each millisecond.
_MILLIS = tuple(b'%03dZ"' % millis for millis in range(1000))


def iso_ms(epoch_ms: int) -> str:
    """ISO 8601 UTC with milliseconds; the events of a batch share seconds, so cache them."""
    seconds, millis = divmod(epoch_ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}Z"


def _inline_refs[T](node: T, definitions: Mapping[str, Any]) -> T:
    """``node`` with each ``{"$ref": "#/definitions/x"}`` replaced by a copy of that
    definition (merged with the ref's sibling keys); the schema has no cycles."""
    result: Any = node
    if isinstance(node, list):
        result = [_inline_refs(item, definitions) for item in node]
    elif isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            target = definitions[ref.removeprefix("#/definitions/")]
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            result = _inline_refs({**copy.deepcopy(target), **siblings}, definitions)
        else:
            result = {key: _inline_refs(value, definitions) for key, value in node.items()}
    return cast(T, result)


class BatchValidator:
    """Compiled once per container; ``process`` is the per-request hot path."""

    def __init__(
        self,
        limits: Limits,
        schema: Mapping[str, Any] | None = None,
        new_event_id: Callable[[], str] | None = None,
    ) -> None:
        self.limits = limits
        contract: dict[str, Any] = copy.deepcopy(dict(schema or load_schema()))
        # Stage limits override the schema's defaults, so the file stays the one contract.
        contract["properties"]["events"]["maxItems"] = limits.max_events_per_batch
        contract["definitions"]["boundedString"]["maxLength"] = limits.max_string_length
        # Every $ref inline: the compiled code makes a call and formats a name for each
        # $ref it follows, which cost more than most of the checks themselves.
        contract = _inline_refs(contract, contract["definitions"])
        envelope = copy.deepcopy(contract)
        envelope.pop("$id", None)
        # The schemas as this stage applies them; tests check jsonschema agrees.
        self.envelope_schema: dict[str, Any] = envelope
        # The event definition itself at the top (not a $ref to it): one call less per
        # event in the compiled code.
        self.event_schema: dict[str, Any] = {
            **contract["definitions"]["event"],
            "definitions": contract["definitions"],
        }
        self._validate_envelope = fastjsonschema.compile(envelope)
        # The schema's own pattern, to name the offending keys in messages.
        context = contract["definitions"]["context"]
        self._context_key = re.compile(context["propertyNames"]["pattern"])
        self._validate_event = fastjsonschema.compile(self.event_schema)
        # The usual envelope and event checked directly; the compiled validators decide
        # the rest.
        self.shape = EventShape(self.event_schema, envelope)
        self._attributes = AttributeChecks(limits)
        self._new_event_id = new_event_id or (lambda: str(uuid.uuid4()))

    def envelope_error(self, body: Any, direct: bool = True) -> str | None:
        """Why the batch envelope breaks the schema, or None. ``direct``: the route's way,
        the usual envelope checked directly (``shape.py``); else the compiled validator."""
        if direct and self.shape.envelope(body):
            return None
        return self._schema_error(self._validate_envelope, body, "body")

    def event_error(self, event: Any, direct: bool = True) -> str | None:
        """Why one event breaks the schema, or None. ``direct``: the route's way, the usual
        event checked directly (``shape.py``); else the compiled validator alone."""
        if direct and type(event) is dict and self.shape.keys(event) >= 0:
            return None
        return self._schema_error(self._validate_event, event, "event")

    def _schema_error(self, validate: Callable[[Any], Any], value: Any, where: str) -> str | None:
        """The compiled validator's verdict on ``value`` as a message, or None."""
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            return schema_message(exc, where, self.limits, self._context_key)
        return None

    def process(
        self,
        body: dict[str, Any],
        now_ms: int,
        server_fields: Callable[[dict[str, Any]], Mapping[str, Any] | None] | None = None,
    ) -> BatchResult:
        """``server_fields`` is called once with the valid batch context (it may remove
        client signals from it) and returns the fields every record gets after the
        context merge, or None to drop the request's events (``BatchResult.dropped``)."""
        events = body.get("events")
        if isinstance(events, list) and len(events) > self.limits.max_events_per_batch:
            raise BadRequest(
                413,
                f"batch has {len(events)} events; the limit is "
                f"{self.limits.max_events_per_batch} per request: send smaller batches",
            )
        problem = self.envelope_error(body)
        if problem is not None:
            raise BadRequest(400, problem)
        assert isinstance(events, list)
        batch_context: dict[str, Any] = body.get("context") or {}
        # What an event's own context may not respell: the batch context's keys by their
        # lower case (those the server takes out are taken out below).
        batch_keys = {key.lower(): key for key in batch_context}
        if len(batch_keys) != len(batch_context):
            raise BadRequest(400, case_collision("body.context", batch_context))
        # strictjson's count, begun before the server takes its signal out of the context
        # (the schema keeps sentAt below 2**63).
        keys = _added_keys(len(body), keys_and_exact(batch_context))
        added = server_fields(batch_context) if server_fields is not None else {}
        if added is None:
            for event in events:
                keys = _added_keys(keys, keys_and_exact(event))
            return BatchResult(dropped=len(events), keys=keys)
        if len(batch_keys) != len(batch_context):  # the server took its signals out
            batch_keys = {key.lower(): key for key in batch_context}
        # JSON Schema counts 1.0 as an integer: store epoch ms as ints whatever was sent.
        # The clock offset (the server's time when the batch was sent minus the client's)
        # is the batch's: derivedTimestamp is each event's time plus it.
        offset = now_ms - int(body["sentAt"]) if "sentAt" in body else None
        # The server's fields are the same for every record of the request: serialized
        # once, they close each record's JSON (no context key or event field can name them).
        closing = b"," + orjson.dumps({**added, "serverTimestamp": iso_ms(now_ms)})[1:] + b"\n"
        # The batch context, likewise, for the events that need no copy of their own.
        try:
            batch_part = b"," + orjson.dumps(batch_context)[1:-1] if batch_context else b""
        except orjson.JSONEncodeError as exc:  # a lone surrogate, an integer past 64 bits
            raise BadRequest(400, f"body.context cannot be stored: {shown(exc, 200)}") from None
        result = BatchResult(server_fields=dict(added))
        max_event_bytes = self.limits.max_event_bytes
        # derivedTimestamp up to its second, for the last second: a batch's events share them.
        second, derived_head = -1, b""
        shape_keys, attribute_keys = self.shape.keys, self._attributes.keys
        for index, event in enumerate(events):
            try:
                # The direct check's count (-1: undecided, or not an object), made once.
                event_keys = shape_keys(event) if type(event) is dict else -1
                if (
                    event_keys >= 0
                    and "eventId" in event
                    and "context" not in event
                    and type(attributes := event.get("metricAttributes")) is not str
                ):
                    # The usual event, taken by the direct check: _stored_line's first
                    # way, inline (tests/test_route_fast_paths.py checks they agree).
                    if attributes is not None:
                        more = attribute_keys(attributes)
                        event_keys = event_keys + more if more >= 0 else -1
                    head, context_part = orjson.dumps(event)[:-1], batch_part
                    timestamp = event["timestamp"]
                else:
                    head, event_keys = self._stored_line(
                        event, event_keys, batch_context, batch_keys, batch_part
                    )
                    context_part, timestamp = b"", int(event["timestamp"])
            except EventError as exc:
                keys = _added_keys(keys, keys_and_exact(event))
                result.rejected.append(Rejection(index, bounded(str(exc))))
                continue
            except orjson.JSONEncodeError as exc:
                keys = _added_keys(keys, keys_and_exact(event))
                result.rejected.append(Rejection(index, f"event cannot be stored: {exc}"))
                continue
            if keys >= 0:
                keys = keys + event_keys if event_keys >= 0 else -1
            if offset is not None and 0 <= (derived := offset + timestamp) <= _MAX_EPOCH_MS:
                if derived // 1000 != second:
                    second = derived // 1000
                    derived_head = b',"derivedTimestamp":"%s.' % _iso_second_bytes(second)
                parts = (head, context_part, derived_head, _MILLIS[derived % 1000], closing)
                line = b"".join(parts)
            else:
                line = b"".join((head, context_part, closing))
            if len(line) > max_event_bytes:
                result.rejected.append(
                    Rejection(
                        index,
                        f"event is {len(line)} bytes once stored; the limit is "
                        f"{max_event_bytes} bytes: send fewer or shorter attributes",
                    )
                )
                continue
            result.records.append(line)
        result.keys = keys
        return result

    def _stored_line(
        self,
        event: Any,
        keys: int,
        batch_context: dict[str, Any],
        batch_keys: dict[str, str],
        batch_part: bytes,
    ) -> tuple[bytes, int]:
        """The stored record's JSON without its closing brace: the event with the batch
        context merged in (the server's fields follow); and the keys the event holds
        (``keys_and_exact``'s count, made on the way for the usual event). ``keys`` is
        the direct check's count for the event (``EventShape.keys``; -1: undecided)."""
        if type(event) is not dict:
            raise EventError(f"event must be a JSON object, got {json_type(event)}")
        if keys < 0:  # not the usual event: the compiled validator decides, and says why
            message = self._schema_error(self._validate_event, event, "event")
            if message is not None:
                raise EventError(message)
        attributes = event.get("metricAttributes")
        if (
            type(event["timestamp"]) is int
            and type(event.get("seq", 1)) is int
            and "eventId" in event
            and "context" not in event
            and type(attributes) is not str
        ):
            # The usual event: stored as sent, with the batch context appended as bytes
            # (no copy; the schema keeps context keys apart from event fields).
            if attributes is not None:
                keys = _added_keys(keys, self._attributes.keys(attributes))
            if keys < 0:
                keys = keys_and_exact(event)
            return orjson.dumps(event)[:-1] + batch_part, keys
        record = self._record(event, batch_context, batch_keys)
        return orjson.dumps(record)[:-1], keys_and_exact(event)

    def _record(
        self, event: dict[str, Any], batch_context: dict[str, Any], batch_keys: dict[str, str]
    ) -> dict[str, Any]:
        """A copy of the event as stored: epoch ms as an integer, string attributes parsed,
        an event id, the batch context and then the event's own merged in."""
        record = dict(event)
        record["timestamp"] = int(record["timestamp"])
        if "seq" in record:  # 2.0 is an integer to JSON Schema; stored as 2
            record["seq"] = int(record["seq"])
        own_context = record.pop("context", None)
        attributes = record.get("metricAttributes")
        if isinstance(attributes, str):
            attributes = self._parse_attributes(attributes)
            record["metricAttributes"] = attributes
        if attributes is not None:
            self._attributes.keys(attributes)
        if "eventId" not in record:
            record["eventId"] = self._new_event_id()
        # Context never shadows an event field: the schema forbids those names.
        if batch_context:
            record.update(batch_context)
        if own_context:
            if len({key.lower() for key in own_context}) != len(own_context) or any(
                batch_keys.get(key.lower(), key) != key for key in own_context
            ):
                raise EventError(case_collision("event.context", own_context, batch_context))
            record.update(own_context)
        return record

    def _parse_attributes(self, text: str) -> Any:
        try:
            parsed = strict_loads(text)
        except (ValueError, RecursionError) as exc:
            raise EventError(f"metricAttributes is a string but not JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise EventError(f"metricAttributes must hold a JSON object, got {json_type(parsed)}")
        return parsed


def _added_keys(keys: int, more: int) -> int:
    """Two counts of ``keys_and_exact`` added: -1 if either is."""
    return keys + more if keys >= 0 and more >= 0 else -1
