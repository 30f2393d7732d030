"""Strict JSON: what RFC 8259 refuses but Python's ``json`` accepts, refused in one place.

Python reads ``NaN``, ``Infinity``, ``1e999`` (as infinity), repeated keys (the last
wins) and integers of any length (until ``int()`` gives up past 4,300 digits with a
bare ``ValueError``). The route (``validate.py``) and the raw-object reader
(``csv/read.py``) both parse with the hooks here, so both refuse the same things
with the same words. Every refusal is a ``StrictJSONError`` (a ``ValueError``).
"""

from __future__ import annotations

import json
import math
from typing import Any

# Longest integer literal read: well under Python's int/str conversion limit (4,300
# digits), far over any id or count (a 64-bit integer has 20).
MAX_INTEGER_DIGITS = 1000


class StrictJSONError(ValueError):
    """Valid for Python's json module, refused here; the message says why."""


class DuplicateKey(StrictJSONError):
    pass


class NonFiniteNumber(StrictJSONError):
    pass


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 64 else key[:64] + "…"
                raise DuplicateKey(f'duplicate key "{shown}" in a JSON object')
            seen.add(key)
    return result


def reject_constant(name: str) -> Any:
    raise NonFiniteNumber(f"{name} is not valid JSON: send null or a finite number")


def finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 32 else text[:32] + "…"
        raise NonFiniteNumber(f"{shown} is too large for a number: send a finite number")
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
