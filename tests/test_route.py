"""POST /events, OPTIONS /events and GET /health through Chalice's test client."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink
from tests.conftest import route_to
from tests.factories import batch, body_bytes, event

ALLOWED = "https://app.example.com"


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> MemorySink:
    memory = MemorySink()
    route_to(monkeypatch, memory)
    return memory


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


@pytest.fixture
def allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dataclasses.replace(
        app_module.SETTINGS, allowed_origins=(ALLOWED, "https://www.example.com"), stage="prod"
    )
    monkeypatch.setattr(app_module, "SETTINGS", settings)


def post(client: Client, body: Any, content_type: str = "application/json", **headers: str) -> Any:
    raw = body if isinstance(body, bytes) else body_bytes(body)
    return client.http.post("/events", headers={"Content-Type": content_type, **headers}, body=raw)


def test_valid_batch_is_stored_and_counted(client: Client, sink: MemorySink) -> None:
    response = post(client, batch(event(eventId="a"), event(eventId="b")))
    assert response.status_code == 200
    assert response.json_body == {"accepted": 2, "rejected": []}
    stored = [json.loads(line) for line in sink.lines()]
    assert [r["eventId"] for r in stored] == ["a", "b"]
    assert all(r["device"] == "my-device" and r["serverTimestamp"] for r in stored)


def test_events_of_one_request_reach_the_sink_in_one_write(
    client: Client, sink: MemorySink
) -> None:
    post(client, batch(*[event() for _ in range(25)]))
    assert len(sink.records) == 25  # lines; the Firehose sink packs them into one record


def test_text_plain_beacon_body_is_parsed_from_raw_body(client: Client, sink: MemorySink) -> None:
    response = post(client, batch(), content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200
    assert response.json_body["accepted"] == 1


def test_partial_batch_keeps_the_valid_events(client: Client, sink: MemorySink) -> None:
    body = batch(event(eventId="ok-1"), {"metricName": "x"}, event(eventId="ok-2"))
    response = post(client, body)
    assert response.status_code == 200
    assert response.json_body["accepted"] == 2
    [rejection] = response.json_body["rejected"]
    assert rejection["index"] == 1 and "must contain" in rejection["error"]
    assert len(sink.lines()) == 2


ERRORS = [
    pytest.param(b"", "application/json", 400, "empty", id="empty"),
    pytest.param(b"{not json", "application/json", 400, "not valid JSON", id="not-json"),
    pytest.param(b"[1]", "application/json", 400, "got an array", id="array"),
    pytest.param(b'{"events": []}', "application/json", 400, "at least 1", id="no-events"),
    pytest.param(
        b'{"events": [1], "events": [2]}', "text/plain", 400, "duplicate key", id="duplicate-key"
    ),
    pytest.param(b"{}", "application/x-www-form-urlencoded", 415, "not accepted", id="form"),
    pytest.param(b"{}", "image/png", 415, "not accepted", id="binary-type"),
    pytest.param(b" " * (1024 * 1024 + 1), "application/json", 413, "limit", id="too-big"),
]


@pytest.mark.parametrize(("raw", "content_type", "status", "fragment"), ERRORS)
def test_errors_are_json_with_a_message_and_cors(
    client: Client, sink: MemorySink, raw: bytes, content_type: str, status: int, fragment: str
) -> None:
    response = post(client, raw, content_type=content_type, Origin="http://127.0.0.1:5173")
    assert response.status_code == status
    assert fragment in response.json_body["message"]
    assert "Traceback" not in response.body.decode()
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert sink.records == []


def test_sink_failure_is_503_and_the_client_is_told_to_resend(
    client: Client, sink: MemorySink
) -> None:
    sink.fail_next = 1
    response = post(client, batch())
    assert response.status_code == 503
    assert "send the batch again" in response.json_body["message"]
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Access-Control-Expose-Headers"] == "Retry-After"
    assert post(client, batch()).status_code == 200


def test_unexpected_sink_crash_is_a_503_without_internals(
    client: Client, monkeypatch: pytest.MonkeyPatch, sink: MemorySink
) -> None:
    def explode(records: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(sink, "write", explode)
    response = post(client, batch(), Origin="http://127.0.0.1:5173")
    assert response.status_code == 503
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "secret internals" not in response.body.decode()
    assert "Traceback" not in response.body.decode()


def test_health_does_not_touch_the_sink(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_sink() -> Any:
        raise AssertionError("health must not create the sink")

    collector = Collector(BatchValidator(app_module.SETTINGS.limits), no_sink, app_module.app.log)
    monkeypatch.setattr(app_module, "collector", collector)
    response = client.http.get("/health")
    assert response.status_code == 200
    assert response.json_body["status"] == "ok"


def test_dev_preflight_allows_any_origin(client: Client) -> None:
    response = client.http.request(
        "OPTIONS",
        "/events",
        headers={"Origin": "http://127.0.0.1:4173", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"


@pytest.mark.usefixtures("allow_list")
@pytest.mark.parametrize("origin", [ALLOWED, "https://www.example.com"])
def test_allow_list_echoes_each_allowed_origin(
    client: Client, sink: MemorySink, origin: str
) -> None:
    preflight = client.http.request("OPTIONS", "/events", headers={"Origin": origin})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Vary"] == "Origin"
    answer = post(client, batch(), Origin=origin)
    assert answer.headers["Access-Control-Allow-Origin"] == origin
    assert answer.headers["Vary"] == "Origin"
    error = post(client, b"{", Origin=origin)
    assert error.status_code == 400
    assert error.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.usefixtures("allow_list")
def test_allow_list_refuses_other_origins(client: Client, sink: MemorySink) -> None:
    preflight = client.http.request("OPTIONS", "/events", headers={"Origin": "https://evil.test"})
    assert preflight.status_code == 403
    assert "not in this stage's ALLOWED_ORIGINS" in preflight.json_body["message"]
    assert "Access-Control-Allow-Origin" not in preflight.headers
    answer = post(client, batch(), Origin="https://evil.test")
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["Vary"] == "Origin"


def test_one_structured_log_line_per_request_without_event_contents(
    client: Client, sink: MemorySink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=app_module.app.log.name)
    secret = "user-typed-secret"
    post(client, batch(event(metricAttributes={"search": secret}), {"bad": 1}))
    lines = [json.loads(r.getMessage()) for r in caplog.records if '"collect"' in r.getMessage()]
    assert len(lines) == 1
    [log] = lines
    assert log["accepted"] == 1 and log["rejected"] == 1 and log["status"] == 200
    assert "sinkMs" in log and "requestId" in log
    assert secret not in caplog.text


def test_a_bug_in_the_service_is_a_json_500_with_cors(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken:
        def collect(self, *args: Any) -> Any:
            raise ZeroDivisionError("internal detail")

    monkeypatch.setattr(app_module, "collector", Broken())
    response = post(client, batch(), Origin="http://127.0.0.1:5173")
    assert response.status_code == 500
    assert "send them again" in response.json_body["message"]
    assert "internal detail" not in response.body.decode()
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_float_epoch_values_are_taken_not_a_500(client: Client, sink: MemorySink) -> None:
    body = batch(event(timestamp=1707782430123.0), sentAt=1707782431000.0)
    response = post(client, body)
    assert response.status_code == 200 and response.json_body["accepted"] == 1
    [line] = sink.lines()
    assert b'"timestamp":1707782430123,' in line
