"""Error messages a person can act on: echoed input bounded, one message per case.

Echoed input (names, values) in answers and logs is cut to MAX_ECHO_CHARS, and a whole
message to MAX_MESSAGE_CHARS: a 1 MiB body cannot make a 1 MiB answer or log line.
"""

from __future__ import annotations

from typing import Any

MAX_ECHO_CHARS = 64
MAX_MESSAGE_CHARS = 400


def json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    return "an object"


def shown(text: object, limit: int = MAX_ECHO_CHARS) -> str:
    """Input echoed in a message, cut to ``limit`` characters; what UTF-8 cannot hold
    (a lone surrogate from a \\ud800 escape) is written as its escape, so the message
    can go into JSON, a log line or a terminal."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "…"
    if not value.isascii():
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def bounded(message: str) -> str:
    return shown(message, MAX_MESSAGE_CHARS)


def case_collision(
    where: str, context: dict[str, Any], batch_context: dict[str, Any] | None = None
) -> str:
    seen: dict[str, str] = {key.lower(): key for key in batch_context or {}}
    for key in context:
        other = seen.setdefault(key.lower(), key)
        if other != key:
            return (
                f"{where} keys {shown(other)} and {shown(key)} differ only in letter case: "
                "use one spelling (CSV columns and Athena need one)"
            )
    return f"{where} has keys that differ only in letter case"
