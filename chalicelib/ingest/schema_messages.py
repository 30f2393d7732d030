"""The JSON Schema's failures as messages a person can act on: the compiled validator's
message with the hints it lacks (what a field may be), bounded like every message."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chalicelib.ingest.messages import MAX_ECHO_CHARS, bounded, shown

if TYPE_CHECKING:
    import fastjsonschema

    from chalicelib.config import Limits


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
