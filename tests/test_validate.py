"""The contract: which bodies and events are taken, refused, and how they are stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.config import Limits
from chalicelib.ingest.body import BadRequest, parse_body
from chalicelib.ingest.validate import BatchValidator, load_schema
from tests.csv_helpers import run, source
from tests.factories import MISSING, SENT_AT, batch, body_bytes, event

NOW_MS = SENT_AT + 500
LIMITS = Limits()


@pytest.fixture(scope="module")
def validator() -> BatchValidator:
    return BatchValidator(LIMITS, new_event_id=lambda: "generated-id")


def stored(validator: BatchValidator, body: dict[str, Any]) -> list[dict[str, Any]]:
    result = validator.process(body, NOW_MS)
    assert result.rejected == []
    return [json.loads(line) for line in result.records]


# --- bodies refused as a whole ------------------------------------------------------------

BAD_BODIES = [
    pytest.param(b"", "application/json", 400, "empty", id="empty-body"),
    pytest.param(b"   \n", "application/json", 400, "empty", id="blank-body"),
    pytest.param(b"{}", "application/xml", 415, "application/xml", id="xml-content-type"),
    pytest.param(b"{}", None, 415, "Content-Type none", id="no-content-type"),
    pytest.param(b"{}", "multipart/form-data", 415, "text/plain", id="form"),
    pytest.param(b"\xff\xfe{}", "application/json", 400, "UTF-8", id="not-utf8"),
    pytest.param(b"{", "application/json", 400, "not valid JSON", id="truncated"),
    pytest.param(b'{"events": [NaN]}', "application/json", 400, "NaN", id="nan"),
    pytest.param(b'{"events": [Infinity]}', "text/plain", 400, "Infinity", id="infinity"),
    pytest.param(b'{"events": [{"value": 1e999}]}', "text/plain", 400, "too large", id="1e999"),
    pytest.param(
        b'{"events": [], "events": []}',
        "application/json",
        400,
        'duplicate key "events"',
        id="duplicate-key",
    ),
    pytest.param(b"[]", "application/json", 400, "got an array", id="top-level-array"),
    pytest.param(b"42", "application/json", 400, "got a number", id="top-level-number"),
    pytest.param(b'"x"', "application/json", 400, "got a string", id="top-level-string"),
    pytest.param(b"null", "application/json", 400, "got null", id="top-level-null"),
    pytest.param(b"[" * 100_000, "application/json", 400, "not valid JSON", id="absurd-nesting"),
]


@pytest.mark.parametrize(("raw", "content_type", "status", "fragment"), BAD_BODIES)
def test_bad_bodies_get_a_clear_4xx(
    raw: bytes, content_type: str | None, status: int, fragment: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_body(raw, content_type, LIMITS)
    assert caught.value.status == status
    assert fragment in caught.value.message


def test_body_over_the_limit_is_413() -> None:
    raw = b" " * (LIMITS.max_body_bytes + 1)
    with pytest.raises(BadRequest) as caught:
        parse_body(raw, "application/json", LIMITS)
    assert caught.value.status == 413
    assert str(LIMITS.max_body_bytes) in caught.value.message


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "text/plain;charset=UTF-8",
        "Application/JSON; charset=utf-8",
    ],
)
def test_json_and_beacon_content_types_are_accepted(content_type: str) -> None:
    assert parse_body(body_bytes(batch()), content_type, LIMITS)["events"]


BAD_ENVELOPES = [
    pytest.param({"events": []}, 400, "events must contain at least 1 items", id="empty-batch"),
    pytest.param({"sentAt": SENT_AT}, 400, "events", id="no-events"),
    pytest.param({"events": {}}, 400, "events must be array", id="events-not-list"),
    pytest.param({"events": [event()], "extra": 1}, 400, "must not contain", id="unknown-field"),
    pytest.param(batch(sentAt="yesterday"), 400, "sentAt", id="sentAt-string"),
    pytest.param(
        batch(context={"eventId": "x", "ok": 1}),
        400,
        "server-added field in any letter case and do not start with attr_: eventId",
        id="context-shadows-core",
    ),
    pytest.param(batch(context={"attr_x": "x"}), 400, "attr_: attr_x", id="context-attr-prefix"),
    pytest.param(batch(context={"nested": {"a": 1}}), 400, "context", id="context-not-scalar"),
    pytest.param(batch(context={"bad key": 1}), 400, "context", id="context-bad-name"),
    pytest.param(batch(*[event() for _ in range(501)]), 413, "limit is 500", id="too-many"),
]


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_ENVELOPES)
def test_bad_envelopes(validator: BatchValidator, body: Any, status: int, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        validator.process(body, NOW_MS)
    assert caught.value.status == status
    assert fragment in caught.value.message


# --- events refused one by one ---------------------------------------------------------

BAD_EVENTS = [
    pytest.param("not an object", "must be a JSON object", id="string-event"),
    pytest.param(event(metricName=MISSING), "metricName", id="no-metricName"),
    pytest.param(event(timestamp=MISSING), "timestamp", id="no-timestamp"),
    pytest.param(event(sessionId=MISSING), "sessionId", id="no-sessionId"),
    pytest.param(event(timestamp="now"), "timestamp", id="timestamp-string"),
    pytest.param(event(timestamp=-1), "timestamp", id="timestamp-negative"),
    pytest.param(event(value="12"), "value", id="value-string"),
    pytest.param(event(value=True), "value", id="value-boolean"),
    pytest.param(event(metricName=""), "metricName", id="metricName-empty"),
    pytest.param(event(metricName="x" * 129), "metricName", id="metricName-long"),
    pytest.param(event(eventId="has space"), "eventId", id="eventId-pattern"),
    pytest.param(event(serverTimestamp="2020"), "must not contain", id="server-field"),
    pytest.param(event(metricAttributes="not json"), "not JSON", id="attributes-bad-json"),
    pytest.param(event(metricAttributes="[1, 2]"), "got an array", id="attributes-json-array"),
    pytest.param(event(metricAttributes='{"a": 1, "a": 2}'), "duplicate key", id="attr-dup"),
    pytest.param(
        event(metricAttributes=[1]),
        "event.metricAttributes must be an object",
        id="attributes-list",
    ),
    pytest.param(
        event(demoContentId=5), "event.demoContentId must be a string", id="demoContentId-number"
    ),
    pytest.param(
        event(metricAttributes={"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}),
        "deeper than 5",
        id="attributes-too-deep",
    ),
    pytest.param(event(metricAttributes={"s": "x" * 4097}), "longer than 4096", id="attr-long"),
    pytest.param(
        event(
            metricAttributes={
                "k": "x" * 4000,
                "l": "y" * 4000,
                "m": "z" * 4000,
                "n": "w" * 4000,
                "o": "v" * 4000,
                "p": "u" * 4000,
                "q": "t" * 4000,
                "r": "s" * 4000,
                "s": "r" * 4000,
            }
        ),
        "limit is 32768",
        id="stored-event-too-big",
    ),
    pytest.param(event(context={"device": {"nested": 1}}), "context", id="event-context-bad"),
    pytest.param(event(metricAttributes={"s": "\ud800"}), "cannot be stored", id="surrogate"),
    pytest.param(event(seq=0), "seq", id="seq-zero"),
    pytest.param(event(seq=1.5), "seq", id="seq-fraction"),
    pytest.param(event(seq="3"), "seq", id="seq-string"),
    pytest.param(event(seq=2**31), "seq", id="seq-too-large"),
]


@pytest.mark.parametrize(("bad", "fragment"), BAD_EVENTS)
def test_a_bad_event_is_rejected_by_index_and_keeps_the_others(
    validator: BatchValidator, bad: Any, fragment: str
) -> None:
    good_before, good_after = event(eventId="first"), event(eventId="last")
    result = validator.process(batch(good_before, bad, good_after), NOW_MS)
    assert [r.index for r in result.rejected] == [1]
    assert fragment in result.rejected[0].error
    kept = [json.loads(line)["eventId"] for line in result.records]
    assert kept == ["first", "last"]


# --- enrichment -------------------------------------------------------------------------


def test_stored_record_is_the_event_with_context_and_server_fields(
    validator: BatchValidator,
) -> None:
    [record] = stored(validator, batch(event(eventId="e1", value=2.5)))
    assert record == {
        "eventId": "e1",
        "timestamp": 1707782430123,
        "sessionId": "session-1",
        "metricName": "ContentElementInteraction",
        "value": 2.5,
        "demoContentId": "ButtonClicked-123",
        "metricAttributes": {"action": "click", "button": "submit"},
        "device": "my-device",
        "deviceCodename": "my-code",
        "language": "en_us",
        "appVersion": "1.0.0",
        "gitCommitSha": "abc123",
        "serverTimestamp": "2024-02-13T00:00:31.500Z",
        # Server time minus the client's own send delay (sentAt - timestamp = 877 ms).
        "derivedTimestamp": "2024-02-13T00:00:30.623Z",
    }


def test_event_context_wins_over_batch_context(validator: BatchValidator) -> None:
    body = batch(event(context={"language": "de_de", "screen": "large"}))
    [record] = stored(validator, body)
    assert record["language"] == "de_de"
    assert record["screen"] == "large"
    assert record["device"] == "my-device"
    assert "context" not in record


def test_epoch_ms_sent_as_floats_are_stored_as_integers(validator: BatchValidator) -> None:
    body = batch(event(timestamp=1707782430123.0), sentAt=float(SENT_AT))
    [record] = stored(validator, body)
    assert record["timestamp"] == 1707782430123 and type(record["timestamp"]) is int
    assert record["derivedTimestamp"] == "2024-02-13T00:00:30.623Z"


def test_seq_is_optional_and_stored_as_sent(validator: BatchValidator) -> None:
    records = stored(
        validator,
        batch(event(eventId="a", seq=1), event(eventId="b", seq=2**31 - 1), event(eventId="c")),
    )
    assert [record.get("seq") for record in records] == [1, 2**31 - 1, None]


def test_seq_sent_as_a_float_is_stored_as_an_integer(validator: BatchValidator) -> None:
    [record] = stored(validator, batch(event(seq=2.0)))
    assert record["seq"] == 2 and type(record["seq"]) is int


@pytest.mark.parametrize("key", ["seq", "SEQ", "Seq"])
def test_a_context_key_cannot_respell_seq(validator: BatchValidator, key: str) -> None:
    with pytest.raises(BadRequest, match="context"):
        validator.process(batch(event(seq=1), context={key: 9}), NOW_MS)
    result = validator.process(batch(event(seq=1, context={key: 9})), NOW_MS)
    assert result.records == [] and "context" in result.rejected[0].error


def test_seq_becomes_a_csv_column(validator: BatchValidator) -> None:
    lines = validator.process(batch(event(eventId="a", seq=3), event(eventId="b")), NOW_MS)
    rows, header, _, _ = run(source("raw/x.ndjson", b"".join(lines.records)))
    assert "seq" in header
    assert [row["seq"] for row in rows] == ["3", ""]


def test_missing_event_id_is_generated(validator: BatchValidator) -> None:
    [record] = stored(validator, batch(event(eventId=MISSING)))
    assert record["eventId"] == "generated-id"


def test_generated_event_ids_are_unique_by_default() -> None:
    validator = BatchValidator(LIMITS)
    result = validator.process(batch(event(eventId=MISSING), event(eventId=MISSING)), NOW_MS)
    ids = {json.loads(line)["eventId"] for line in result.records}
    assert len(ids) == 2


def test_attributes_given_as_json_string_are_stored_as_object(validator: BatchValidator) -> None:
    [record] = stored(validator, batch(event(metricAttributes='{"a": {"b": [1, 2]}}')))
    assert record["metricAttributes"] == {"a": {"b": [1, 2]}}


def test_without_sent_at_there_is_no_derived_timestamp(validator: BatchValidator) -> None:
    body = batch()
    del body["sentAt"]
    [record] = stored(validator, body)
    assert "derivedTimestamp" not in record
    assert record["serverTimestamp"] == "2024-02-13T00:00:31.500Z"


def test_records_are_newline_terminated_single_lines(validator: BatchValidator) -> None:
    body = batch(event(metricAttributes={"text": "two\nlines"}))
    [line] = validator.process(body, NOW_MS).records
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_stage_limits_override_the_schema() -> None:
    small = BatchValidator(Limits(max_events_per_batch=2, max_string_length=10))
    with pytest.raises(BadRequest) as caught:
        small.process(batch(event(), event(), event()), NOW_MS)
    assert caught.value.status == 413 and "limit is 2" in caught.value.message
    with pytest.raises(BadRequest) as caught:
        small.process(batch(event(), context={"device": "x" * 11}), NOW_MS)
    assert caught.value.message == (
        "body.context.device must be a string (at most 10 characters), a number, a boolean or null"
    )
    result = small.process(batch(event(metricAttributes={"a": "x" * 11})), NOW_MS)
    assert result.records == [] and "longer than 10" in result.rejected[0].error


def test_schema_file_is_a_valid_draft7_schema() -> None:
    schema = load_schema()
    assert schema["$schema"].startswith("http://json-schema.org/draft-07/")
    assert schema["properties"]["events"]["maxItems"] == LIMITS.max_events_per_batch


# --- server fields (chalicelib.ingest.enrich supplies them on the route) -----------------------


def test_server_fields_are_computed_once_and_added_after_the_context(
    validator: BatchValidator,
) -> None:
    seen: list[dict[str, Any]] = []

    def server_fields(context: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(context))
        context.pop("signal", None)
        return {"country": "DE", "isBot": False}

    body = batch(event(), event(context={"screen": "s"}), context={"device": "d", "signal": 1})
    result = validator.process(body, NOW_MS, server_fields)
    assert seen == [{"device": "d", "signal": 1}]
    records = [json.loads(line) for line in result.records]
    assert len(records) == 2
    for record in records:
        assert (record["country"], record["isBot"], record["device"]) == ("DE", False, "d")
        assert "signal" not in record
        keys = list(record)
        assert keys.index("device") < keys.index("country") < keys.index("serverTimestamp")
    assert records[1]["screen"] == "s"


def test_server_fields_of_none_drop_the_request(validator: BatchValidator) -> None:
    result = validator.process(batch(event(), {"bad": 1}, event()), NOW_MS, lambda _: None)
    assert (result.records, result.rejected, result.dropped) == ([], [], 3)


def test_server_fields_are_not_asked_for_a_bad_envelope(validator: BatchValidator) -> None:
    def never(context: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("asked for server fields")

    for body in (batch(context={"a": [1]}), batch(context={"device": "a", "DEVICE": "b"})):
        with pytest.raises(BadRequest):
            validator.process(body, NOW_MS, never)
