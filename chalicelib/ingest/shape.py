"""The direct check of the usual event and envelope: a few type, range and length tests that
say "valid" only where the schema's compiled validator would (issue 25).

The compiled validator (fastjsonschema) costs about 3 µs per event, most of the route's
time; the checks below cost a fraction of that. They decide only one way: ``EventShape.keys``
says an event is valid, or that it cannot tell ("undecided"), and then the compiled validator
decides and writes the message. So what the route accepts and refuses, and the words it
refuses with, are the schema's either way. tests/test_schema.py checks, with Hypothesis and
``jsonschema``, that both paths agree with the reference, and that an event the direct check
accepts is one the schema accepts.

The checks are written for the schema's event definition and envelope as they are: at
start-up both are compared with the form the checks were written for (the limits read from
them). Any other form (someone edits the schema) turns the direct checks off, so that every
body and event goes to the compiled validator: slower, never wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.ingest.strictjson import INEXACT_FLOAT

# orjson reads an integer beyond 64 bits as a float: a float this large may be one
# (a module global, for the checks' closures).
_INEXACT_FLOAT = INEXACT_FLOAT

# Words of a schema that say nothing a validator checks.
_NOTES = frozenset({"description", "$comment", "title", "$schema", "$id"})
# Context keys remembered as taken by the schema's pattern (0.4 µs a search): the same
# few come with every request; past this many, the others are searched each time.
KNOWN_CONTEXT_KEYS = 1024


def schema_regex(pattern: str) -> re.Pattern[str]:
    """A schema pattern as fastjsonschema applies it: searched, with every unescaped ``$``
    an end of the text (``\\Z``), not "before a final newline" as in Python."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _bare(node: Any) -> Any:
    """The schema without its notes."""
    if isinstance(node, dict):
        return {key: _bare(value) for key, value in node.items() if key not in _NOTES}
    if isinstance(node, list):
        return [_bare(item) for item in node]
    return node


def _known_form(event_schema: Mapping[str, Any]) -> dict[str, Any]:
    """The event definition the checks are written for, with the limits of ``event_schema``
    (KeyError or TypeError when it has not even those places)."""
    fields = event_schema["properties"]
    attributes = fields["metricAttributes"]["anyOf"]
    context = fields["context"]
    return {
        "type": "object",
        "required": ["timestamp", "sessionId", "metricName"],
        "additionalProperties": False,
        "properties": {
            "eventId": {
                "type": "string",
                "minLength": 1,
                "maxLength": fields["eventId"]["maxLength"],
                "pattern": fields["eventId"]["pattern"],
            },
            "timestamp": {
                "type": "integer",
                "minimum": 0,
                "maximum": fields["timestamp"]["maximum"],
            },
            "sessionId": {
                "type": "string",
                "minLength": 1,
                "maxLength": fields["sessionId"]["maxLength"],
            },
            "seq": {"type": "integer", "minimum": 1, "maximum": fields["seq"]["maximum"]},
            "metricName": {
                "type": "string",
                "minLength": 1,
                "maxLength": fields["metricName"]["maxLength"],
            },
            "value": {"type": ["number", "null"]},
            "demoContentId": {
                "anyOf": [
                    {
                        "type": "string",
                        "maxLength": fields["demoContentId"]["anyOf"][0]["maxLength"],
                    },
                    {"type": "null"},
                ]
            },
            "metricAttributes": {
                "anyOf": [
                    {"type": "object", "maxProperties": attributes[0]["maxProperties"]},
                    {"type": "string", "maxLength": attributes[1]["maxLength"]},
                    {"type": "null"},
                ]
            },
            "context": _context_form(context),
        },
    }


def _context_form(context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "maxProperties": context["maxProperties"],
        "propertyNames": {"pattern": context["propertyNames"]["pattern"]},
        "additionalProperties": {
            "anyOf": [
                {
                    "type": "string",
                    "maxLength": context["additionalProperties"]["anyOf"][0]["maxLength"],
                },
                {"type": "number"},
                {"type": "boolean"},
                {"type": "null"},
            ]
        },
    }


def _known_envelope(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope the checks are written for, with the limits of ``envelope``."""
    fields = envelope["properties"]
    return {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {
            "sentAt": {"type": "integer", "minimum": 0, "maximum": fields["sentAt"]["maximum"]},
            "context": _context_form(fields["context"]),
            "events": {
                "type": "array",
                "minItems": 1,
                "maxItems": fields["events"]["maxItems"],
            },
        },
    }


class EventShape:
    """The direct checks, made once per validator from the schemas it applies.

    ``keys(event)``: the number of keys the event holds outside ``metricAttributes`` (its
    own and its context's) when the schema accepts it, or -1: undecided (maybe invalid,
    maybe only unusual, such as a timestamp sent as 1.0, or a float orjson may have read
    from an integer past 64 bits), and the compiled validator decides.
    ``envelope(body)``: True when the schema accepts the body's envelope; False: undecided."""

    def __init__(
        self, event_schema: Mapping[str, Any], envelope_schema: Mapping[str, Any] | None = None
    ) -> None:
        event = _bare({k: v for k, v in event_schema.items() if k != "definitions"})
        envelope = _bare({k: v for k, v in (envelope_schema or {}).items() if k != "definitions"})
        try:
            self.enabled = (
                event == _known_form(event)
                and envelope == _known_envelope(envelope)
                and envelope["properties"]["context"] == event["properties"]["context"]
            )
        except (KeyError, TypeError, IndexError):
            self.enabled = False
        self.keys: Callable[[dict[str, Any]], int] = _undecided
        self.envelope: Callable[[Any], bool] = _not_decided
        if self.enabled:
            context_fits = _context_check(event["properties"]["context"])
            self.keys = _event_check(event["properties"], context_fits)
            self.envelope = _envelope_check(envelope["properties"], context_fits)


def _undecided(event: dict[str, Any]) -> int:
    return -1


def _not_decided(body: Any) -> bool:
    return False


# The checks as closures over the schema's limits: local names are the cheapest to read,
# and they run for every event.


def _context_check(context: Mapping[str, Any]) -> Callable[[Any], bool]:
    max_keys = context["maxProperties"]
    key_fits = schema_regex(context["propertyNames"]["pattern"]).search
    text_max = context["additionalProperties"]["anyOf"][0]["maxLength"]
    known_keys: set[str] = set()

    def context_fits(context: Any) -> bool:
        if type(context) is not dict or len(context) > max_keys:
            return False
        for key, value in context.items():
            if key not in known_keys:
                if type(key) is not str or not key_fits(key):
                    return False
                if len(known_keys) < KNOWN_CONTEXT_KEYS:
                    known_keys.add(key)
            kind = type(value)
            if kind is str:
                if len(value) > text_max:
                    return False
            elif kind is float:
                if not -_INEXACT_FLOAT < value < _INEXACT_FLOAT:
                    return False
            elif value is not None and kind is not int and kind is not bool:
                return False
        return True

    return context_fits


def _envelope_check(
    fields: Mapping[str, Any], context_fits: Callable[[Any], bool]
) -> Callable[[Any], bool]:
    sent_at_max = fields["sentAt"]["maximum"]
    max_events = fields["events"]["maxItems"]
    absent = object()  # what .get gives for a field the body does not have

    def envelope(body: Any) -> bool:
        if type(body) is not dict:
            return False
        events = body.get("events")
        if type(events) is not list or not 0 < len(events) <= max_events:
            return False
        found = 1
        if (sent_at := body.get("sentAt", absent)) is not absent:
            if type(sent_at) is not int or not 0 <= sent_at <= sent_at_max:
                return False
            found += 1
        if (context := body.get("context", absent)) is not absent:
            if not context_fits(context):
                return False
            found += 1
        return found == len(body)

    return envelope


def _event_check(
    fields: Mapping[str, Any], context_fits: Callable[[Any], bool]
) -> Callable[[dict[str, Any]], int]:
    """``EventShape.keys`` for the known form of the event definition (``_known_form``)."""
    event_id_max = fields["eventId"]["maxLength"]
    event_id_fits = schema_regex(fields["eventId"]["pattern"]).search
    timestamp_max = fields["timestamp"]["maximum"]
    session_max = fields["sessionId"]["maxLength"]
    seq_max = fields["seq"]["maximum"]
    metric_max = fields["metricName"]["maxLength"]
    content_id_max = fields["demoContentId"]["anyOf"][0]["maxLength"]
    attributes = fields["metricAttributes"]["anyOf"]
    attributes_max_keys = attributes[0]["maxProperties"]
    attributes_text_max = attributes[1]["maxLength"]

    def keys(event: dict[str, Any]) -> int:
        # Subscripts and "in", not .get: a method call costs more than either.
        try:
            timestamp = event["timestamp"]
            session = event["sessionId"]
            metric = event["metricName"]
        except KeyError:
            return -1
        if not (
            type(timestamp) is int
            and 0 <= timestamp <= timestamp_max
            and type(session) is str
            and 0 < len(session) <= session_max
            and type(metric) is str
            and 0 < len(metric) <= metric_max
        ):
            return -1
        # The fields found: when they are all the event has, it has no other (the schema's
        # additionalProperties: false) without a set operation.
        found = 3
        count = len(event)
        if count == found:
            return count
        if "eventId" in event:
            event_id = event["eventId"]
            if not (
                type(event_id) is str
                and 0 < len(event_id) <= event_id_max
                and event_id_fits(event_id)
            ):
                return -1
            found += 1
        if "value" in event:
            value = event["value"]
            # NaN is undecided too: the schema takes it, the compiled validator says so.
            if (
                value is not None
                and type(value) is not int
                and (type(value) is not float or not -_INEXACT_FLOAT < value < _INEXACT_FLOAT)
            ):
                return -1
            found += 1
        if "demoContentId" in event:
            content_id = event["demoContentId"]
            if content_id is not None and (
                type(content_id) is not str or len(content_id) > content_id_max
            ):
                return -1
            found += 1
        if "metricAttributes" in event:
            attributes = event["metricAttributes"]
            kind = type(attributes)
            if attributes is not None and not (
                (kind is dict and len(attributes) <= attributes_max_keys)
                or (kind is str and len(attributes) <= attributes_text_max)
            ):
                return -1
            found += 1
        if found == count:
            return count
        if "seq" in event:
            seq = event["seq"]
            if type(seq) is not int or not 1 <= seq <= seq_max:
                return -1
            found += 1
        if "context" in event:
            context = event["context"]
            if not context_fits(context):
                return -1
            found += 1
            count += len(context)
        return count if found == len(event) else -1

    return keys
