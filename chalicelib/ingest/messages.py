"""Error messages a person can act on: schema failures explained, echoed input bounded.

Echoed input (names, values) in answers and logs is cut to MAX_ECHO_CHARS, and a whole
message to MAX_MESSAGE_CHARS: a 1 MiB body cannot make a 1 MiB answer or log line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import fastjsonschema

    from chalicelib.config import Limits

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


# anyOf failures say only "cannot be validated by any definition"; say what would do.
_ANY_OF_HINTS = {
    "demoContentId": "must be a string of at most 256 characters, or null",
    "metricAttributes": "must be an object (at most 100 keys), a string holding a JSON "
    "object (at most 16384 characters), or null",
}
_CONTEXT_VALUE_HINT = "must be a string (at most {n} characters), a number, a boolean or null"


def schema_message(
    exc: fastjsonschema.JsonSchemaValueException,
    subject: str,
    limits: Limits,
    context_key: re.Pattern[str],
) -> str:
    """The compiled validator's message, with the hints it lacks, bounded."""
    return bounded(_unbounded_schema_message(exc, subject, limits, context_key))


def _unbounded_schema_message(
    exc: fastjsonschema.JsonSchemaValueException,
    subject: str,
    limits: Limits,
    context_key: re.Pattern[str],
) -> str:
    name = shown(str(exc.name or "data").replace("data", subject, 1), 2 * MAX_ECHO_CHARS)
    if exc.rule == "propertyNames" and isinstance(exc.value, dict):
        bad = sorted(key for key in exc.value if not context_key.match(key))
        listed = ", ".join(shown(key) for key in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return (
            f"{name} keys must be identifiers (a letter, then letters, digits or _, at most "
            "64) that are not an event field or server-added field in any letter case and "
            f"do not start with attr_: {listed}{more}"
        )
    if exc.rule == "anyOf":
        field_name = name.rsplit(".", 1)[-1]
        if ".context." in name:
            return f"{name} " + _CONTEXT_VALUE_HINT.format(n=limits.max_string_length)
        if field_name in _ANY_OF_HINTS:
            return f"{name} {_ANY_OF_HINTS[field_name]}"
    message: str = exc.message
    return message.replace("data", subject, 1) if message.startswith("data") else message


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
