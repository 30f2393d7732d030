"""Strict JSON: what RFC 8259 refuses but Python's ``json`` accepts, refused in one place.

Python reads ``NaN``, ``Infinity``, ``1e999`` (as infinity), repeated keys (the last
wins) and integers of any length (until ``int()`` gives up past 4,300 digits with a
bare ``ValueError``). The route (``body.py``) and the raw-object reader
(``csv/read.py``) both parse with the hooks here, so both refuse the same things
with the same words. Every refusal is a ``StrictJSONError`` (a ``ValueError``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from chalicelib.ingest.messages import shown

# Longest integer literal read: well under Python's int/str conversion limit (4,300
# digits), far over any id or count (a 64-bit integer has 20).
MAX_INTEGER_DIGITS = 1000


class StrictJSONError(ValueError):
    """Valid for Python's json module, refused here; the message says why."""


class DuplicateKey(StrictJSONError):
    """An object names one key twice; JSON parsers disagree on which value wins."""


class NonFiniteNumber(StrictJSONError):
    """NaN, Infinity or a number too large for a float: not JSON, and no CSV cell."""


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f'duplicate key "{shown(key)}" in a JSON object')
            seen.add(key)
    return result


def reject_constant(name: str) -> Any:
    raise NonFiniteNumber(f"{name} is not valid JSON: send null or a finite number")


def finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise NonFiniteNumber(f"{shown(text, 32)} is too large for a number: send a finite number")
    return value


def bounded_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INTEGER_DIGITS:
        raise NonFiniteNumber(
            f"an integer of {digits} digits is too long (the limit is {MAX_INTEGER_DIGITS})"
        )
    return int(text)


# For raw objects: repeated keys keep the last (what every other reader does).
DECODER = json.JSONDecoder(
    parse_constant=reject_constant, parse_float=finite_float, parse_int=bounded_int
)
# For request bodies: repeated keys are refused too.
_BODY_DECODER = json.JSONDecoder(
    object_pairs_hook=reject_duplicate_keys,
    parse_constant=reject_constant,
    parse_float=finite_float,
    parse_int=bounded_int,
)


def strict_loads(text: str) -> Any:
    """``json.loads`` that refuses NaN/Infinity, numbers that overflow to infinity
    (1e999), over-long integers and repeated keys."""
    return _BODY_DECODER.decode(text)


# orjson reads an integer beyond 64 bits as a float: a float this large may be one.
INEXACT_FLOAT = 9.2e18


def strict_loads_bytes(raw: bytes) -> Any:
    """``strict_loads`` of a UTF-8 body, about four times faster when the body is compact
    JSON (what the browser client sends): orjson reads it, and the result is taken only
    when it provably says the same as the strict decoder.

    orjson already refuses NaN, Infinity, numbers that overflow, invalid UTF-8 and
    lone surrogates. It keeps the last of repeated keys, and reads integers beyond 64
    bits as floats. So its result is taken when no float reaches 2**63 and the number
    of keys it kept equals the number of `":` in the text: each key ends so unless a
    space sits before its colon (texts with a quote before white space go the slow
    way), and a `":` inside a string is an escaped quote, which only adds to the text's
    count. Equal counts therefore mean no key was repeated. Anything else, and any
    error, goes to the strict decoder, which gives the result or the precise error.
    """
    return confirmed(raw, *loads_unconfirmed(raw))


def confirmed(raw: bytes, value: Any, keys_in_text: int, keys: int | None = None) -> Any:
    """The second half of ``strict_loads_bytes``: ``value`` (``loads_unconfirmed(raw)``'s
    reading) if the keys it holds (``keys``, counted by a caller that walked it, else
    here) are the text's count of `":`; else the strict decoder's reading, or its error."""
    if keys_in_text < 0:
        return value
    if keys is None:
        keys = keys_and_exact(value)
    if keys == keys_in_text:
        return value
    return strict_loads(raw.decode("utf-8"))


# A quote followed by white space: perhaps a key spaced from its colon (`"a" : 1`). One
# compiled pattern: a third of the cost of four `in` scans.
_SPACED_QUOTE = re.compile(rb'"[ \t\n\r]')


def loads_unconfirmed(raw: bytes) -> tuple[Any, int]:
    """The first half of ``strict_loads_bytes``, for a caller that walks the value anyway
    (the route): orjson's reading and the number of `":` in the text, which
    ``keys_and_exact(value)`` must equal for the value to be the strict decoder's (else
    ``strict_loads`` gives the result or the error); or the strict decoder's value and -1
    (nothing left to confirm) when orjson refused the text or a key may be spaced."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return strict_loads(raw.decode("utf-8")), -1
    if _SPACED_QUOTE.search(raw):
        return strict_loads(raw.decode("utf-8")), -1
    return value, raw.count(b'":')


def keys_and_exact(value: Any) -> int:
    """How many keys ``value`` holds in all its objects, or -1 if a float in it may
    be an integer orjson could not hold."""
    if type(value) is float and not -INEXACT_FLOAT < value < INEXACT_FLOAT:
        return -1
    keys = 0
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            keys += len(item)
            children = item.values()
        elif kind is list:
            children = item
        else:
            continue
        for child in children:
            child_kind = type(child)
            if child_kind is dict or child_kind is list:
                pending.append(child)
            elif child_kind is float and not -INEXACT_FLOAT < child < INEXACT_FLOAT:
                return -1
    return keys


def json_bytes(value: Any) -> bytes:
    """Compact JSON by orjson; where it refuses (lone surrogates, integers past 64 bits),
    the standard library's, ASCII-escaped so that the bytes are UTF-8 all the same."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=True).encode("ascii")
