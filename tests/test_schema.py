"""The JSON Schema file is the contract; ``jsonschema`` is the reference implementation.

The route validates with code compiled from the schema (fastjsonschema, for speed).
These tests check the file against the draft-07 metaschema and let Hypothesis
generate valid and near-valid batches and events, asserting that the compiled
validator and ``jsonschema`` accept and refuse exactly the same ones.
"""

from __future__ import annotations

import json
import string
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.config import Limits
from chalicelib.ingest.bots import BOT_REASONS
from chalicelib.ingest.enrich import DEVICE_TYPES, MAX_USER_AGENT_CHARS, MAX_VALUE_CHARS
from chalicelib.ingest.validate import (
    RESERVED_FIELDS,
    SCHEMA_PATH,
    BatchValidator,
    context_key_pattern,
    load_schema,
)

VALIDATOR = BatchValidator(Limits())
REFERENCE_EVENT = jsonschema.Draft7Validator(VALIDATOR.event_schema)
REFERENCE_ENVELOPE = jsonschema.Draft7Validator(VALIDATOR.envelope_schema)


def test_schema_file_is_a_valid_draft_07_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


def test_stage_limits_are_applied_to_the_schema_the_route_uses() -> None:
    validator = BatchValidator(Limits(max_events_per_batch=7, max_string_length=10))
    assert validator.envelope_schema["properties"]["events"]["maxItems"] == 7
    reference = jsonschema.Draft7Validator(validator.event_schema)
    long_context = {"timestamp": 1, "sessionId": "s", "metricName": "m", "context": {"a": "x" * 11}}
    assert not reference.is_valid(long_context)
    assert validator.event_error(long_context) is not None


# --- generators: values near every boundary the schema draws -----------------------------

NAMES = st.sampled_from(
    [
        "device",
        "language",
        "appVersion",
        "custom_1",
        "a" * 64,
        "a" * 65,  # too long
        "1abc",  # not an identifier
        "attr_x",  # reserved prefix
        "eventId",  # shadows an event field
        "serverTimestamp",  # shadows a server field
        "eventIdX",  # fine: only the exact names are reserved
        "with-dash",
        "",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["x" * 4096, "x" * 4097]),
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)
CONTEXT = st.one_of(
    st.dictionaries(NAMES, SCALARS, max_size=4),
    st.dictionaries(NAMES, ANY_JSON, max_size=2),
    st.just({f"k{i}": i for i in range(32)}),
    st.just({f"k{i}": i for i in range(33)}),
    ANY_JSON,
)
EPOCH = st.one_of(
    st.integers(min_value=-2, max_value=100_000_000_000_002),
    st.sampled_from([0, 100_000_000_000_000, 100_000_000_000_001, 1.0, 1.5, -1]),
    st.text(max_size=3),
    st.none(),
)
EVENT_ID = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1, max_size=65),
    st.sampled_from(["", "with space", "a/b", "é", "x" * 64, "x" * 65]),
    st.integers(),
)
BOUNDED_TEXT = st.one_of(
    st.text(max_size=4),
    st.sampled_from(["", "x" * 128, "x" * 129, "x" * 256, "x" * 257]),
    st.integers(),
    st.none(),
)
ATTRIBUTES = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=5), ANY_JSON, max_size=4),
    st.just({f"k{i}": i for i in range(100)}),
    st.just({f"k{i}": i for i in range(101)}),
    st.text(max_size=10),
    st.sampled_from(["x" * 16384, "x" * 16385, '{"a": 1}']),
    st.integers(),
    st.lists(st.integers(), max_size=2),
)
# Near-boundary values for each field (some valid, some not) ...
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "eventId": EVENT_ID,
    "timestamp": EPOCH,
    "sessionId": BOUNDED_TEXT,
    "metricName": BOUNDED_TEXT,
    "value": st.one_of(st.none(), st.floats(allow_nan=False), st.integers(), st.text(max_size=2)),
    "demoContentId": BOUNDED_TEXT,
    "metricAttributes": ATTRIBUTES,
    "context": CONTEXT,
    "unexpected": SCALARS,
}
# ... and an event that is valid before they are applied.
VALID_EVENT = st.fixed_dictionaries(
    {
        "timestamp": st.integers(min_value=0, max_value=100_000_000_000_000),
        "sessionId": st.text(min_size=1, max_size=128),
        "metricName": st.text(min_size=1, max_size=128),
    },
    optional={
        "eventId": st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=64),
        "value": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
        "demoContentId": st.one_of(st.none(), st.text(max_size=256)),
        "metricAttributes": st.dictionaries(st.text(max_size=5), SCALARS, max_size=3),
        "context": st.dictionaries(st.sampled_from(["device", "language", "x_1"]), SCALARS),
    },
)


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A valid event with zero to two fields replaced or removed; sometimes not an object."""
    if draw(st.integers(0, 19)) == 0:
        return draw(ANY_JSON)
    event: dict[str, Any] = draw(VALID_EVENT)
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(sorted(NEAR)))
        if draw(st.integers(0, 5)) == 0:
            event.pop(name, None)
        else:
            event[name] = draw(NEAR[name])
    return event


@st.composite
def batches(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(ANY_JSON)
    body: dict[str, Any] = {"events": [{}]}
    if draw(st.booleans()):
        body["sentAt"] = draw(st.integers(0, 100_000_000_000_000))
    if draw(st.booleans()):
        body["context"] = draw(st.dictionaries(st.sampled_from(["device", "x"]), SCALARS))
    mutation = draw(st.integers(0, 4))
    if mutation == 1:
        body["sentAt"] = draw(EPOCH)
    elif mutation == 2:
        body["context"] = draw(CONTEXT)
    elif mutation == 3:
        size = draw(st.sampled_from([0, 1, 2, 500, 501]))
        body["events"] = [{}] * size if draw(st.booleans()) else draw(ANY_JSON)
    elif mutation == 4:
        body[draw(st.sampled_from(["extra", "events"]))] = draw(ANY_JSON)
    return body


SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(events())
def test_compiled_event_validator_agrees_with_jsonschema(event: Any) -> None:
    compiled_ok = VALIDATOR.event_error(event) is None
    assert compiled_ok == REFERENCE_EVENT.is_valid(event), (
        VALIDATOR.event_error(event),
        [error.message for error in REFERENCE_EVENT.iter_errors(event)],
    )


@SETTINGS
@given(batches())
def test_compiled_envelope_validator_agrees_with_jsonschema(body: Any) -> None:
    compiled_ok = VALIDATOR.envelope_error(body) is None
    assert compiled_ok == REFERENCE_ENVELOPE.is_valid(body), (
        VALIDATOR.envelope_error(body),
        [error.message for error in REFERENCE_ENVELOPE.iter_errors(body)],
    )


@SETTINGS
@given(events())
def test_both_paths_of_the_event_check_agree_with_jsonschema(event: Any) -> None:
    """The route's check (shape.py's direct check, the compiled validator for what it leaves
    undecided) and the compiled validator alone both say what jsonschema says; and what the
    direct check accepts, jsonschema accepts."""
    reference_ok = REFERENCE_EVENT.is_valid(event)
    assert (VALIDATOR.event_error(event) is None) == reference_ok
    assert (VALIDATOR.event_error(event, direct=False) is None) == reference_ok
    if isinstance(event, dict) and VALIDATOR.shape.keys(event) >= 0:
        assert reference_ok, event


@SETTINGS
@given(batches())
def test_both_paths_of_the_envelope_check_agree_with_jsonschema(body: Any) -> None:
    reference_ok = REFERENCE_ENVELOPE.is_valid(body)
    assert (VALIDATOR.envelope_error(body) is None) == reference_ok
    assert (VALIDATOR.envelope_error(body, direct=False) is None) == reference_ok
    if VALIDATOR.shape.envelope(body):
        assert reference_ok, body


def test_the_direct_check_is_on_for_the_schema_as_shipped() -> None:
    """Off, every event would go to the compiled validator (correct, but slower): the
    schema's event definition has changed from the form shape.py was written for."""
    assert VALIDATOR.shape.enabled
    usual = {"eventId": "e-1", "timestamp": 1, "sessionId": "s", "metricName": "m", "value": 1.5}
    assert VALIDATOR.shape.keys({**usual, "metricAttributes": {"a": 1}}) == 6
    assert VALIDATOR.shape.envelope({"sentAt": 1, "context": {"device": "d"}, "events": [{}]})


def test_an_envelope_of_another_form_turns_the_direct_check_off() -> None:
    schema = load_schema()
    schema["properties"]["sentAt"]["minimum"] = 5
    validator = BatchValidator(Limits(), schema)
    assert not validator.shape.enabled
    message = "body.sentAt must be bigger than or equal to 5"
    assert validator.envelope_error({"sentAt": 1, "events": [{}]}) == message


def test_an_event_definition_of_another_form_turns_the_direct_check_off() -> None:
    schema = load_schema()
    schema["definitions"]["event"]["properties"]["sessionId"]["pattern"] = "^s"
    validator = BatchValidator(Limits(), schema)
    assert not validator.shape.enabled
    event = {"timestamp": 1, "sessionId": "x", "metricName": "m"}
    assert validator.event_error(event) == "event.sessionId must match pattern ^s"


@pytest.mark.parametrize(
    "event",
    [
        {"timestamp": 1, "sessionId": "s", "metricName": "m"},
        {"timestamp": 1.0, "sessionId": "s", "metricName": "m", "value": None},
        {"timestamp": 1, "sessionId": "s", "metricName": "m", "metricAttributes": '{"a": 1}'},
        {"timestamp": 1, "sessionId": "s", "metricName": "m", "context": {"eventIdX": True}},
    ],
)
def test_known_valid_events_pass_both(event: dict[str, Any]) -> None:
    assert VALIDATOR.event_error(event) is None and REFERENCE_EVENT.is_valid(event)


def test_context_key_pattern_in_the_schema_is_generated_from_the_reserved_fields() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    pattern = schema["definitions"]["context"]["propertyNames"]["pattern"]
    assert pattern == context_key_pattern(), "regenerate it with context_key_pattern()"


def test_server_fields_are_documented_and_reserved() -> None:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    documented = schema["definitions"]["serverFields"]["properties"]
    event_fields = set(schema["definitions"]["event"]["properties"])
    assert set(documented) == set(RESERVED_FIELDS) - event_fields
    assert all(spec["description"] for spec in documented.values())
    assert documented["uaDeviceType"]["enum"] == list(DEVICE_TYPES)
    assert documented["botReason"]["enum"] == ["", *BOT_REASONS]
    assert documented["userAgent"]["maxLength"] == MAX_USER_AGENT_CHARS
    for name in ("uaBrowser", "uaBrowserVersion", "uaOs", "uaOsVersion"):
        assert documented[name]["maxLength"] == MAX_VALUE_CHARS
