"""What to erase and how to recognise it: the request, value text, the matcher."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import orjson

from chalicelib.csv.columns import json_text

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
SharedContext = tuple[str, str, int]  # (requestId, receivedAt, index) of a rejected record
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
    return value if isinstance(value, str) else json_text(value)


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
    # Rejected records whose batch context matched, as (requestId, receivedAt, index):
    # the request's other records hold only ``"contextOf": index`` and go with them.
    shared_contexts: frozenset[SharedContext] = frozenset()

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

    def contains_quoted(self, data: bytes) -> bool:
        """Does the text hold a requested value as a JSON string (``"u1"``, escaped as
        JSON writes it)? For text that does not parse; unlike ``contains_value`` it does
        not take ``u100`` for ``u1``."""
        return any(b'"' + needle + b'"' in data for needle in self.needles)

    def record_matches(self, record: dict[str, Any]) -> bool:
        for name, wanted in self.criteria.items():
            if name in record and value_text(record[name]) in wanted:
                return True
        return False
