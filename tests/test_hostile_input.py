"""Hostile but well-formed requests: every limit holds for every form an input can take,
every bad input is a 4xx with a bounded message, and nothing crashes the route."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.config import Limits
from chalicelib.ingest.collect import MAX_REJECTIONS_LISTED
from chalicelib.ingest.messages import MAX_MESSAGE_CHARS
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink
from tests.conftest import route_to
from tests.factories import SENT_AT, batch, body_bytes, event

NOW_MS = SENT_AT + 500


@pytest.fixture(scope="module")
def validator() -> BatchValidator:
    return BatchValidator(Limits())


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> MemorySink:
    memory = MemorySink()
    route_to(monkeypatch, memory, log_event_contents=True)
    return memory


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


def post(client: Client, raw: bytes, content_type: str = "application/json") -> Any:
    return client.http.post("/events", headers={"Content-Type": content_type}, body=raw)


def nested(keys: int, per_level: int = 10) -> dict[str, Any]:
    """``keys`` leaf keys spread over objects ``per_level`` wide, two levels deep."""
    return {
        f"g{group}": {f"k{i}": i for i in range(per_level)} for group in range(keys // per_level)
    }


# --- the attribute key budget, whatever form the attributes take --------------------------

ATTRIBUTE_FORMS = [
    pytest.param({f"k{i}": i for i in range(100)}, True, id="object-100"),
    pytest.param(json.dumps({f"k{i}": i for i in range(100)}), True, id="string-100"),
    pytest.param(nested(100), True, id="nested-100"),
    pytest.param({"list": list(range(500))}, True, id="a-list-is-one-column"),
    pytest.param({f"k{i}": i for i in range(101)}, False, id="object-101"),
    pytest.param(json.dumps({f"k{i}": i for i in range(1000)}), False, id="string-1000"),
    pytest.param(nested(3000, per_level=100), False, id="nested-3000"),
    pytest.param(json.dumps(nested(110)), False, id="string-nested-110"),
]


@pytest.mark.parametrize(("attributes", "accepted"), ATTRIBUTE_FORMS)
def test_at_most_100_attribute_columns_per_event_in_every_form(
    validator: BatchValidator, attributes: Any, accepted: bool
) -> None:
    result = validator.process(batch(event(metricAttributes=attributes)), NOW_MS)
    assert bool(result.records) is accepted
    if not accepted:
        [rejection] = result.rejected
        assert "100" in rejection.error


def test_the_attribute_key_budget_is_a_stage_setting() -> None:
    wide = BatchValidator(Limits(max_attribute_keys=300))
    result = wide.process(batch(event(metricAttributes=nested(300, per_level=30))), NOW_MS)
    assert len(result.records) == 1


@pytest.mark.parametrize("key", ["a\x00b", "bell\x07", "del\x7f", "cr\r", "esc\x1b"])
def test_control_characters_in_attribute_keys_are_refused(
    validator: BatchValidator, key: str
) -> None:
    result = validator.process(batch(event(metricAttributes={"ok": {key: 1}})), NOW_MS)
    [rejection] = result.rejected
    assert "control character" in rejection.error


@pytest.mark.parametrize("key", ["tab\tkey", "new\nline"])
def test_tab_and_newline_in_attribute_keys_are_allowed(validator: BatchValidator, key: str) -> None:
    result = validator.process(batch(event(metricAttributes={key: 1})), NOW_MS)
    assert len(result.records) == 1  # the CSV header shows them escaped (\u0009, \u000a)


def test_control_characters_in_values_are_kept(validator: BatchValidator) -> None:
    result = validator.process(batch(event(metricAttributes={"text": "a\x00b\tc\nd"})), NOW_MS)
    [record] = [json.loads(line) for line in result.records]
    assert record["metricAttributes"]["text"] == "a\x00b\tc\nd"


# --- context keys: no shadowing in any letter case, no two spellings ----------------------

SHADOWING_KEYS = ["Timestamp", "EVENTID", "eventid", "ServerTimestamp", "Attr_x", "ATTR_y"]
SHADOWING_KEYS += ["uaBrowser", "Country", "isbot", "userAgent"]


@pytest.mark.parametrize("key", SHADOWING_KEYS)
def test_context_keys_may_not_name_a_stored_field_in_any_case(
    validator: BatchValidator, key: str
) -> None:
    result = validator.process(batch(event(context={key: "x"})), NOW_MS)
    assert result.rejected and "any letter case" in result.rejected[0].error
    with pytest.raises(Exception, match="any letter case"):
        validator.process(batch(context={key: "x"}), NOW_MS)


def test_batch_context_keys_differing_only_in_case_are_refused(validator: BatchValidator) -> None:
    with pytest.raises(Exception, match="differ only in letter case") as caught:
        validator.process(batch(context={"device": "a", "Device": "b"}), NOW_MS)
    assert getattr(caught.value, "status", None) == 400


def test_an_event_context_key_may_override_the_batch_key_spelled_the_same(
    validator: BatchValidator,
) -> None:
    body = batch(
        event(eventId="same", context={"device": "mine"}),
        event(eventId="other-case", context={"Device": "mine"}),
        context={"device": "batch"},
    )
    result = validator.process(body, NOW_MS)
    [stored] = [json.loads(line) for line in result.records]
    assert stored["eventId"] == "same" and stored["device"] == "mine"
    assert [r.index for r in result.rejected] == [1]
    assert "differ only in letter case" in result.rejected[0].error


# --- bounded answers and log lines ---------------------------------------------------------


def test_a_4301_digit_integer_is_a_400_not_a_500(client: Client, sink: MemorySink) -> None:
    raw = b'{"events": [{"timestamp": 1, "sessionId": "s", "metricName": "m", "value": '
    raw += b"9" * 4301 + b"}]}"
    response = post(client, raw)
    assert response.status_code == 400
    assert "too long" in response.json_body["message"]
    assert len(response.body) < 400


def test_megabyte_of_bad_keys_gives_a_small_answer_and_log_line(
    client: Client, sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    long_key = "x" * 900_000
    raw = body_bytes(batch(context={long_key: 1, "attr_" + "y" * 90_000: 2}))
    assert len(raw) < 1024 * 1024
    with caplog.at_level(logging.INFO):
        response = post(client, raw)
    assert response.status_code == 400
    assert len(response.body) <= MAX_MESSAGE_CHARS + 100
    assert "xxxx" in response.json_body["message"]  # what it names is recognisable
    assert max(len(record.getMessage()) for record in caplog.records) < 4096


def test_many_extra_properties_give_a_bounded_message(client: Client, sink: MemorySink) -> None:
    bad = event(**{f"extra_{'z' * 200}_{i}": i for i in range(300)})
    response = post(client, body_bytes(batch(bad)))
    assert response.status_code == 200
    [rejection] = response.json_body["rejected"]
    assert len(rejection["error"]) <= MAX_MESSAGE_CHARS + 1


def test_500_empty_events_list_20_reasons_and_count_the_rest(
    client: Client, sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    raw = body_bytes({"events": [{}] * 500})
    with caplog.at_level(logging.INFO):
        response = post(client, raw)
    body = response.json_body
    assert response.status_code == 200 and body["accepted"] == 0
    assert len(body["rejected"]) == MAX_REJECTIONS_LISTED and body["rejectedCount"] == 500
    assert [r["index"] for r in body["rejected"]] == list(range(MAX_REJECTIONS_LISTED))
    assert len(response.body) < 5000
    assert max(len(record.getMessage()) for record in caplog.records) < 4096


def test_logged_event_contents_are_bounded_too(
    client: Client, sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    big = [event(metricAttributes={"s": "x" * 4000, "t": "y" * 4000}) for _ in range(100)]
    with caplog.at_level(logging.INFO):
        response = post(client, body_bytes(batch(*big)))
    assert response.json_body["accepted"] == 100
    line = max((record.getMessage() for record in caplog.records), key=len)
    assert len(line) < 30_000 and json.loads(line)["accepted"] == 100


@pytest.mark.parametrize(
    "content_type", ["application/" + "x" * 100_000, "text/" + "é" * 1000 + "; charset=utf-8"]
)
def test_an_odd_content_type_is_echoed_bounded(
    client: Client, sink: MemorySink, content_type: str
) -> None:
    response = post(client, b"{}", content_type)
    assert response.status_code == 415 and len(response.json_body["message"]) < 300


# --- what UTF-8 or a 64-bit integer cannot hold (found in review: these were 500s) ------

EVENT = '{"timestamp":1,"sessionId":"s","metricName":"m","eventId":"e"}'


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        ('{"context":{"x":100000000000000000000000},"events":[' + EVENT + "]}", 400, "context"),
        ('{"context":{"x":"\\ud800"},"events":[' + EVENT + "]}", 400, "context"),
        ('{"context":{"\\ud800":1},"events":[' + EVENT + "]}", 400, "identifiers"),
        ('{"\\ud800":1,"\\ud800":2}', 400, "duplicate key"),
        (
            '{"events":[{"timestamp":1,"sessionId":"s","metricName":"m",'
            '"metricAttributes":"{\\"\\\\ud800\\":1,\\"\\\\ud800\\":2}"}]}',
            200,
            "duplicate key",
        ),
    ],
    ids=["context-big-int", "context-surrogate", "context-key-surrogate", "dup-key", "attrs"],
)
def test_lone_surrogates_and_huge_integers_are_4xx_never_500(
    client: Client,
    sink: MemorySink,
    caplog: pytest.LogCaptureFixture,
    raw: str,
    status: int,
    fragment: str,
) -> None:
    with caplog.at_level(logging.INFO):
        response = post(client, raw.encode())
    assert response.status_code == status
    text = json.dumps(response.json_body)
    assert fragment in text
    assert all("Traceback" not in record.getMessage() for record in caplog.records)


def test_a_bad_event_echoing_a_surrogate_does_not_sink_its_batch(
    client: Client, sink: MemorySink
) -> None:
    """The rejection's message quotes the bad key; the good event is stored once, and the
    answer is a 200, so the client does not send the batch again."""
    good = '{"timestamp":1,"sessionId":"s","metricName":"m","eventId":"good-1"}'
    bad = '{"timestamp":1,"sessionId":"s","metricName":"m","context":{"\\ud800":1}}'
    response = post(client, ('{"events":[' + good + "," + bad + "]}").encode())
    assert response.status_code == 200 and response.json_body["accepted"] == 1
    assert "\\ud800" in response.json_body["rejected"][0]["error"]  # escaped, not raw
    assert len(sink.lines()) == 1


def test_the_webdriver_signal_is_not_a_key_an_event_context_collides_with() -> None:
    from chalicelib.ingest.enrich import Enricher

    validator = BatchValidator(Limits())
    body = batch(event(context={"Webdriver": 1}), context={"webdriver": False})
    result = validator.process(body, NOW_MS, lambda context: Enricher().fields({}, context))
    assert not result.rejected and len(result.records) == 1
