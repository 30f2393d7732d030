"""The dev stage's event inspector: what it keeps, the /_dev routes, and their absence in prod."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.dev.inspector import (
    ITEM_OVERHEAD_BYTES,
    MAX_KEPT,
    MAX_SHOWN_BODY_CHARS,
    MAX_SHOWN_EVENT_BYTES,
    BadQuery,
    Inspector,
    parse_limit,
    rejected_item,
)
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink
from tests.conftest import REPO_ROOT
from tests.factories import batch, body_bytes, event

LOCAL_PAGE = "http://127.0.0.1:5173"


def record(metric: str, n: int) -> bytes:
    return json.dumps({"metricName": metric, "n": n}).encode() + b"\n"


def events_of(inspector: Inspector, limit: int = 100, metric: str | None = None) -> list[Any]:
    body: list[Any] = json.loads(inspector.events_json(limit, metric))["events"]
    return body


# --- what it keeps --------------------------------------------------------------------------


def test_newest_first_filtered_and_limited() -> None:
    inspector = Inspector()
    inspector.stored([record("A", 1), record("B", 2)])
    inspector.stored([record("A", 3)])
    assert [e["n"] for e in events_of(inspector)] == [3, 2, 1]
    assert [e["n"] for e in events_of(inspector, metric="A")] == [3, 1]
    assert [e["n"] for e in events_of(inspector, limit=1, metric="A")] == [3]
    assert events_of(inspector, metric="C") == []


def test_bounded_by_count_and_by_bytes() -> None:
    inspector = Inspector(max_items=3)
    inspector.stored([record("A", n) for n in range(10)])
    assert [e["n"] for e in events_of(inspector)] == [9, 8, 7]
    small = Inspector(max_bytes=ITEM_OVERHEAD_BYTES + 100)
    small.stored([json.dumps({"pad": "x" * 40, "n": n}).encode() for n in range(5)])
    assert [e["n"] for e in events_of(small)] == [4]


def test_records_are_returned_exactly_as_stored() -> None:
    inspector = Inspector()
    line = b'{"metricName":"A","big":123456789012345678901234567890,"s":"\\u00e9"}\n'
    inspector.stored([line])
    assert inspector.events_json(5) == '{"events":[' + line.decode().rstrip() + "]}"
    assert inspector.events_json(5, "A") == inspector.events_json(5)


def test_clear_empties_both_lists() -> None:
    inspector = Inspector()
    inspector.stored([record("A", 1)])
    inspector.rejected([{"reason": "bad", "index": 0, "event": {}}])
    assert inspector.clear() == {"events": 1, "rejected": 1}
    assert events_of(inspector) == [] and inspector.rejections(10) == []


def test_a_rejected_event_is_shown_with_its_reason_and_bounded() -> None:
    small = rejected_item(
        {"receivedAt": "t", "requestId": "r", "reason": "no", "index": 2, "event": {"a": 1}}
    )
    assert small == {
        "receivedAt": "t",
        "requestId": "r",
        "index": 2,
        "error": "no",
        "event": {"a": 1},
    }
    big = rejected_item({"reason": "too big", "index": 0, "event": {"pad": "x" * 20_000}})
    assert big["event"] is None and big["eventTruncated"] is True
    assert len(big["eventText"]) == MAX_SHOWN_EVENT_BYTES and big["eventText"].startswith('{"pad"')
    cut = rejected_item({"reason": "too big", "index": 0, "eventText": "y" * 70_000})
    assert cut["eventText"] == "y" * MAX_SHOWN_EVENT_BYTES


def test_a_body_refused_whole_is_shown_with_its_status_and_start() -> None:
    text = rejected_item(
        {"reason": "not JSON", "status": 400, "contentType": "application/json", "bodyBytes": 5000,
         "body": "z" * 5000, "bodyEncoding": "text"}
    )  # fmt: skip
    assert text["status"] == 400 and text["error"] == "not JSON" and text["index"] is None
    assert text["body"] == "z" * MAX_SHOWN_BODY_CHARS and text["bodyTruncated"] is True
    binary = rejected_item(
        {"reason": "not UTF-8", "status": 400, "body": base64.b64encode(b"\xff\xfe").decode(),
         "bodyEncoding": "base64", "bodyBytes": 2}
    )  # fmt: skip
    assert binary["bodyEncoding"] == "base64" and binary["bodyTruncated"] is False


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "1.5", "", "٣", "1001", "9" * 50])
def test_a_limit_that_is_not_a_count_from_1_to_1000_is_refused(raw: str) -> None:
    with pytest.raises(BadQuery, match=f"from 1 to {MAX_KEPT}"):
        parse_limit(raw)


def test_limits_that_are_counts_are_taken() -> None:
    assert (parse_limit(None), parse_limit("1"), parse_limit("1000")) == (100, 1, 1000)


# --- the routes -----------------------------------------------------------------------------


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, MemorySink]]:
    """The app's inspector and routes, fed by a collector writing to memory."""
    inspector = app_module.inspector
    assert inspector is not None
    inspector.clear()
    sink = MemorySink()
    collector = Collector(
        BatchValidator(app_module.SETTINGS.limits),
        lambda: sink,
        app_module.app.log,
        observers=[inspector],
    )
    monkeypatch.setattr(app_module, "collector", collector)
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client, sink
    inspector.clear()


def post(client: Client, body: bytes, content_type: str = "application/json") -> Any:
    return client.http.post("/events", headers={"Content-Type": content_type}, body=body)


def get(client: Client, path: str) -> tuple[int, Any, dict[str, str]]:
    answer = client.http.get(path, headers={"Origin": LOCAL_PAGE})
    return answer.status_code, json.loads(answer.body), answer.headers


def test_stored_events_are_listed_as_stored_newest_first(
    client: tuple[Client, MemorySink],
) -> None:
    test_client, sink = client
    post(test_client, body_bytes(batch(event(eventId="i-1", metricName="A"))))
    post(test_client, body_bytes(batch(event(eventId="i-2", metricName="B"))))
    status, body, headers = get(test_client, "/_dev/events")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == LOCAL_PAGE
    assert [e["eventId"] for e in body["events"]] == ["i-2", "i-1"]
    assert body["events"][1] == json.loads(sink.lines()[0])  # exactly what the sink got
    assert body["events"][0]["device"] == "my-device" and body["events"][0]["serverTimestamp"]
    _, only_a, _ = get(test_client, "/_dev/events?metricName=A&limit=5")
    assert [e["eventId"] for e in only_a["events"]] == ["i-1"]


def test_rejected_events_and_bodies_are_listed_with_reasons(
    client: tuple[Client, MemorySink],
) -> None:
    test_client, _ = client
    answer = post(test_client, body_bytes(batch(event(eventId="ok"), {"metricName": "M"})))
    assert answer.json_body["accepted"] == 1
    post(test_client, b"{oops")
    post(test_client, b"{}", content_type="text/csv")
    status, body, headers = get(test_client, "/_dev/rejected")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == LOCAL_PAGE
    unsupported, not_json, bad_event = body["rejected"]
    assert unsupported["status"] == 415 and "Content-Type" in unsupported["error"]
    assert not_json["status"] == 400 and not_json["body"] == "{oops"
    assert "not valid JSON" in not_json["error"] and not_json["event"] is None
    assert bad_event["index"] == 1 and bad_event["event"] == {"metricName": "M"}
    assert "sessionId" in bad_event["error"] and bad_event["receivedAt"].endswith("Z")
    _, one, _ = get(test_client, "/_dev/rejected?limit=1")
    assert one["rejected"] == [unsupported]


def test_delete_clears_both_lists_so_a_test_starts_clean(
    client: tuple[Client, MemorySink],
) -> None:
    test_client, sink = client
    post(test_client, body_bytes(batch(event(), {"metricName": "M"})))
    answer = test_client.http.delete("/_dev/events")
    assert answer.status_code == 200
    assert json.loads(answer.body) == {"cleared": {"events": 1, "rejected": 1}}
    assert get(test_client, "/_dev/events")[1] == {"events": []}
    assert get(test_client, "/_dev/rejected")[1] == {"rejected": []}
    assert len(sink.lines()) == 1  # the stored data is not touched


def test_a_local_page_on_another_port_may_delete(client: tuple[Client, MemorySink]) -> None:
    test_client, _ = client
    answer = test_client.http.request(
        "OPTIONS",
        "/_dev/events",
        headers={"Origin": LOCAL_PAGE, "Access-Control-Request-Method": "DELETE"},
        body=b"",
    )
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == LOCAL_PAGE
    assert "DELETE" in answer.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/_dev/events?limit=0", "limit must be a whole number from 1 to 1000, got '0'"),
        ("/_dev/rejected?limit=x", "limit must be a whole number from 1 to 1000, got 'x'"),
        ("/_dev/events?metric=A", "unknown query parameter 'metric'"),
        ("/_dev/rejected?metricName=A", "unknown query parameter 'metricName'"),
    ],
)
def test_bad_queries_are_400_with_a_message_and_cors(
    client: tuple[Client, MemorySink], path: str, message: str
) -> None:
    status, body, headers = get(client[0], path)
    assert status == 400 and message in body["message"]
    assert headers["Access-Control-Allow-Origin"] == LOCAL_PAGE


def test_the_routes_exist_only_in_the_dev_stage() -> None:
    script = "import app, json; print(json.dumps(sorted(app.app.routes)))"

    def routes(**env: str) -> list[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "ALLOWED"))}
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=REPO_ROOT,
            env={**base, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        listed: list[str] = json.loads(done.stdout.splitlines()[-1])
        return listed

    prod = routes(
        ANALYTICS_STAGE="prod",
        ANALYTICS_SINK="firehose",
        FIREHOSE_STREAM_NAME="s",
        ALLOWED_ORIGINS="https://app.example.com",
    )
    assert prod == ["/events", "/health"]
    assert routes(ANALYTICS_STAGE="dev") == ["/_dev/events", "/_dev/rejected", "/events", "/health"]
