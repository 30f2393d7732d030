"""Rewriting one raw or rejected object without the matching events, line by line."""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from chalicelib.csv.read import GZIP_MAGIC, StreamError, iter_decompressed, next_object
from chalicelib.erase.request import GZIP_LEVEL, ErasureError, Kind, Matcher, SharedContext
from chalicelib.ingest.strictjson import DECODER
from chalicelib.rejects.record import (
    BODY,
    BODY_ENCODING,
    CONTEXT,
    CONTEXT_OF,
    EVENT,
    EVENT_TEXT,
    INDEX,
    RECEIVED_AT,
    REQUEST_ID,
)
from chalicelib.storage.base import ErasableStore

# --- rewriting one object ------------------------------------------------------------


@dataclass
class Removed:
    """What left one object: matching records, bad lines and whole-body rejects."""

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

    @classmethod
    def sum(cls, results: Iterable[ObjectResult]) -> Removed:
        """What ``results`` removed together."""
        total = cls()
        for result in results:
            total.add(result.removed)
        return total

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
    """One object's part in an erasure: what was removed from it, and what could not be read."""

    key: str
    kind: Kind
    removed: Removed = field(default_factory=Removed)
    damaged: str = ""  # why the object could not be read to its end
    versions_deleted: int = 0
    # Its rejected records whose batch context matched (their requests' other records
    # name them by ``contextOf``, perhaps in another object).
    contexts: list[SharedContext] = field(default_factory=list)


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
        self.contexts: list[SharedContext] = []

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
            yield from iter_decompressed(raw)
        except StreamError as exc:
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
                position = next_object(text, position)
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
        the batch's; so does each event of a body rejected whole when the body parses.
        What does not parse (a cut event, a body that is not JSON) matches when it holds
        a requested value as a quoted JSON string: ``"u1"``, so that u1 does not take
        u100's events. A record that holds only ``contextOf`` matches when the context
        it names matched."""
        if BODY in record and EVENT not in record:
            matched = self._body_matches(_body_bytes(record))
            if matched:
                self.removed.rejected_bodies += 1
            return matched
        event, context = record.get(EVENT), record.get(CONTEXT)
        if self._shared_context_matches(record, context):
            self.removed.events += 1
            return True
        if event is None and isinstance(record.get(EVENT_TEXT), str):
            event = _parsed(record[EVENT_TEXT].encode("utf-8", "surrogatepass"))
            if event is None:  # cut at 64 KiB: only its text is left
                matched = self._matcher.contains_quoted(record[EVENT_TEXT].encode())
                if matched:
                    self.removed.events += 1
                return matched
        matched = any(self._matcher.record_matches(scope) for scope in _scopes(event, context))
        if not isinstance(event, dict) and event is not None:
            matched = matched or self._matcher.contains_quoted(text)
        if matched:
            self.removed.events += 1
        return matched

    def _shared_context_matches(self, record: dict[str, Any], context: Any) -> bool:
        """Does the request's batch context match: the one this record holds (noted, for
        the records naming it), or the one its ``contextOf`` names?"""
        request_id, received_at = record.get(REQUEST_ID), record.get(RECEIVED_AT)
        if not isinstance(request_id, str) or not isinstance(received_at, str):
            return False
        if isinstance(context, dict):
            matched = self._matcher.record_matches(context)
            index = record.get(INDEX)
            if matched and type(index) is int:
                self.contexts.append((request_id, received_at, index))
            return matched
        named = record.get(CONTEXT_OF)
        return type(named) is int and (request_id, received_at, named) in (
            self._matcher.shared_contexts
        )

    def _body_matches(self, body: bytes) -> bool:
        batch = _parsed(body)
        if not isinstance(batch, dict):
            return self._matcher.contains_quoted(body)
        events = batch.get("events")
        scopes = [batch.get("context")]
        if isinstance(events, list):
            for event in events:
                scopes.extend(_scopes(event, None))
        return any(self._matcher.record_matches(s) for s in scopes if isinstance(s, dict))


def _scopes(event: Any, context: Any) -> list[dict[str, Any]]:
    """Where a rejected event's values are: the event, its own context, the batch's."""
    scopes = [s for s in (event, context) if isinstance(s, dict)]
    if isinstance(event, dict) and isinstance(event.get("context"), dict):
        scopes.append(event["context"])
    return scopes


def _parsed(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _always(_data: bytes) -> bool:
    return True


def _body_bytes(record: dict[str, Any]) -> bytes:
    body = record.get(BODY)
    if not isinstance(body, str):
        return json.dumps(body).encode("utf-8")
    if record.get(BODY_ENCODING) == "base64":
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
    result.contexts = lines.contexts
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
            # Under the local sink's lock: an append meanwhile would go to the old file.
            with store.rewriting(key), store.open_read(key) as raw, store.open_write(key) as handle:
                if _is_gzip(raw):
                    with gzip.GzipFile(
                        filename="", mode="wb", fileobj=handle, compresslevel=GZIP_LEVEL, mtime=0
                    ) as packed:
                        _copy(lines.run(raw), packed)
                else:
                    _copy(lines.run(raw), handle)
                if lines.damaged:
                    raise ErasureError(damaged_message(store, key, lines.damaged))
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


def damaged_message(store: ErasableStore, key: str, reason: str) -> str:
    return (
        f"{store.describe(key)} holds matching events but cannot be read to its end "
        f"({reason}): rewriting it would lose the unreadable rest. Repair or delete it, "
        "then run the erasure again"
    )
