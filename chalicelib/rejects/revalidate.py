"""Stored rejects validated again: each event as the route would store it now, or why not.

A reject (see :mod:`chalicelib.rejects.record`) goes through a ``BatchValidator`` with the
limits given (today's schema, limits perhaps raised since) exactly as the route would
have taken it: the event with its batch's context and ``sentAt``, at the moment it was
first received. So a now-valid event keeps its ``eventId``, gets ``serverTimestamp`` =
the reject's ``receivedAt`` and the ``derivedTimestamp`` the route would have given it.
An event sent without an ``eventId`` gets the uuid5 of (requestId, receivedAt, index),
its replay key, the same on every replay: it is set on the event before validation,
where the route would have appended a random one, so the stored line is otherwise the
same. A body refused whole is read again when its first 64 KiB were all of it.

The rejects of one request are stored next to each other (one sink write), so they are
validated as one batch: the envelope is checked once per request, not once per event.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.config import Limits
from chalicelib.ingest.body import BadRequest, parse_body
from chalicelib.ingest.enrich import Enricher, stored_server_fields
from chalicelib.ingest.validate import BatchValidator, iso_ms
from chalicelib.rejects.record import (
    CONTENT_TYPE,
    CONTEXT,
    CONTEXT_OF,
    CUT,
    INDEX,
    RECEIVED_AT,
    REQUEST_ID,
    SENT_AT,
    SERVER,
    is_body_record,
    kept_body,
    kept_event,
)

# Fixed for ever: replay keys (and the eventIds derived from them) are uuid5 names in it.
NAMESPACE = uuid.UUID("6f0b1f5e-2f8e-4c36-9a57-1d1f0c1e7a11")
UNREPLAYABLE_CUT_EVENT = "the event was kept cut to 64 KiB: it cannot be replayed"
UNREPLAYABLE_CUT_BODY = "the body was kept cut to 64 KiB: it cannot be replayed"
NOT_A_RECORD = "not a reject record (no receivedAt/requestId, or a bad one)"
CONTEXT_NOT_FOUND = (
    "its batch context was kept with the request's first reject, which is not next to it"
)
DROPPED_BOT = "a bot's request, and the stage drops those (DROP_BOTS)"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def key_bytes(request_id: str, received_at: str, index: int) -> bytes:
    """The 16 bytes of ``uuid5(NAMESPACE, "requestId\\nreceivedAt\\nindex")``, computed
    without a UUID object: one rejected event's identity in every run and every copy."""
    name = f"{request_id}\n{received_at}\n{index}".encode("utf-8", "surrogatepass")
    digest = bytearray(hashlib.sha1(NAMESPACE.bytes + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest)


def replay_key(request_id: str, received_at: str, index: int) -> uuid.UUID:
    return uuid.UUID(bytes=key_bytes(request_id, received_at, index))


@functools.lru_cache(maxsize=256)  # the rejects of a request share their receivedAt
def epoch_ms(iso: str) -> int:
    """``2026-11-28T10:00:00.123Z`` → epoch ms; ValueError unless ``iso_ms`` gives it back."""
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    millis = (moment - _EPOCH) // timedelta(milliseconds=1)
    if iso_ms(millis) != iso:
        raise ValueError(f"{iso!r} is not a receivedAt timestamp")
    return millis


@dataclass(frozen=True)
class Outcome:
    """One event of a reject: its stored line now, or why it is still refused."""

    key: bytes
    line: bytes | None
    reason: str = ""


@dataclass
class Group:
    """Events of one request to validate together: (replay key, event as sent)."""

    shared: dict[str, Any]  # the batch's context and sentAt
    received_ms: int
    items: list[tuple[bytes, Any]]
    request: tuple[str, str] = ("", "")  # (requestId, receivedAt) of event records
    first_index: int | None = None  # the index of the record that holds the context


class Revalidator:
    """Stored rejects → groups of events (or reasons they cannot be) → outcomes.

    ``enricher`` holds the stage's bot rule (``DROP_BOTS``), applied as the route does."""

    def __init__(self, limits: Limits, enricher: Enricher | None = None) -> None:
        self.limits = limits
        self._validator = BatchValidator(limits)
        self._enricher = enricher or Enricher()

    def work(self, records: Iterable[dict[str, Any]]) -> Iterator[Group | Outcome | str]:
        """Per request a ``Group``; a body that no longer parses an ``Outcome``; a record
        that cannot be replayed its reason."""
        group: Group | None = None
        for record in records:
            found = self._read(record)
            if isinstance(found, Group) and group is not None and _joins(group, found):
                group.items.extend(found.items)
                continue
            if isinstance(found, Group) and CONTEXT_OF in found.shared:
                found = CONTEXT_NOT_FOUND  # its context was kept with another record
            if group is not None:
                yield group
                group = None
            if isinstance(found, Group) and found.request != ("", ""):
                group = found  # event records of one request follow each other
            else:
                yield found
        if group is not None:
            yield group

    def validate(self, group: Group, items: list[tuple[bytes, Any]]) -> Iterator[Outcome]:
        """The outcome of each of ``items`` (a part of ``group``), in order."""
        step = self.limits.max_events_per_batch
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            shared = {k: v for k, v in group.shared.items() if k != SERVER}
            if isinstance(shared.get("context"), dict):  # the bot rule takes webdriver out
                shared["context"] = dict(shared["context"])
            batch = {**shared, "events": [_with_id(event, key) for key, event in chunk]}
            server = group.shared.get(SERVER)
            try:
                # The server's fields as the route computed them then (no headers now).
                result = self._validator.process(batch, group.received_ms, self._fields(server))
            except BadRequest as exc:  # the batch's context no longer passes
                yield from (Outcome(key, None, exc.message) for key, _ in chunk)
                continue
            if result.dropped:
                yield from (Outcome(key, None, DROPPED_BOT) for key, _ in chunk)
                continue
            reasons = {rejection.index: rejection.error for rejection in result.rejected}
            lines = iter(result.records)
            for index, (key, _) in enumerate(chunk):
                reason = reasons.get(index)
                yield Outcome(key, next(lines)) if reason is None else Outcome(key, None, reason)

    def _fields(self, server: Any) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
        """The request's server fields as stored (only what the server adds), under the
        stage's bot rule: the route's own decision (``Enricher.apply_bot_rule``)."""
        stored = stored_server_fields(server) if isinstance(server, dict) else {}

        def fields(context: dict[str, Any]) -> dict[str, Any] | None:
            return self._enricher.apply_bot_rule(dict(stored), context)

        return fields

    def _read(self, record: dict[str, Any]) -> Group | Outcome | str:
        request_id, received_at = record.get(REQUEST_ID), record.get(RECEIVED_AT)
        if not isinstance(request_id, str) or not isinstance(received_at, str):
            return NOT_A_RECORD
        try:
            received_ms = epoch_ms(received_at)
            if is_body_record(record):
                return self._body(record, request_id, received_at, received_ms)
            event = kept_event(record)
        except (KeyError, ValueError, RecursionError, TypeError, AttributeError):  # not ours
            return NOT_A_RECORD
        if event is CUT:
            return UNREPLAYABLE_CUT_EVENT
        index = record[INDEX]
        if not isinstance(index, int):
            return NOT_A_RECORD
        shared: dict[str, Any] = {CONTEXT: record.get(CONTEXT) or {}}
        if CONTEXT_OF in record:  # the context is in an earlier record of the request
            shared = {CONTEXT_OF: record[CONTEXT_OF]}
        if SENT_AT in record:
            shared[SENT_AT] = record[SENT_AT]
        if isinstance(record.get(SERVER), dict):
            shared[SERVER] = record[SERVER]
        item = (key_bytes(request_id, received_at, index), event)
        return Group(shared, received_ms, [item], (request_id, received_at), index)

    def _body(
        self, record: dict[str, Any], request_id: str, received_at: str, received_ms: int
    ) -> Group | Outcome | str:
        raw = kept_body(record)
        if raw is None:
            return UNREPLAYABLE_CUT_BODY
        try:
            batch = parse_body(raw, record.get(CONTENT_TYPE), self.limits)
            self._validator.process(batch, received_ms)  # the checks of the whole batch
        except BadRequest as exc:
            return Outcome(key_bytes(request_id, received_at, -1), None, exc.message)
        events: list[Any] = batch["events"]  # a list: the envelope passed
        shared = {name: value for name, value in batch.items() if name != "events"}
        if isinstance(record.get(SERVER), dict):  # what the request's headers said
            shared[SERVER] = record[SERVER]
        keys = (key_bytes(request_id, received_at, i) for i in range(len(events)))
        return Group(shared, received_ms, list(zip(keys, events, strict=False)))


def _joins(group: Group, found: Group) -> bool:
    if found.request != group.request or len(group.items) >= 10_000:  # bounded
        return False
    if CONTEXT_OF in found.shared:  # shares the context of the group's first record
        shared_rest = {k: v for k, v in found.shared.items() if k != CONTEXT_OF}
        group_rest = {k: v for k, v in group.shared.items() if k != CONTEXT}
        return found.shared[CONTEXT_OF] == group.first_index and shared_rest == group_rest
    return found.shared == group.shared


def _with_id(event: Any, key: bytes) -> Any:
    """The event with its replay key as eventId when it was sent without one."""
    if isinstance(event, dict) and "eventId" not in event:
        return {**event, "eventId": str(uuid.UUID(bytes=key))}
    return event
