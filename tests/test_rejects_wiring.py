"""app.py keeps rejects: under rejected/ of the data folder in dev (a real `chalice local`),
through a second Firehose stream in prod (moto), best effort against a failing or hanging
rejects endpoint (a fake Firehose: moto cannot fail on demand)."""

from __future__ import annotations

import dataclasses
import gzip
import http.server
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.aws import make_client
from chalicelib.rejects.record import SCHEMA_VERSION
from chalicelib.sinks import FirehoseSink
from tests.conftest import TEST_BUCKET, aws_client
from tests.factories import SENT_AT, batch, body_bytes, event
from tests.test_chalice_local import request


def read_lines(s3: Any, prefix: str) -> list[dict[str, Any]]:
    """Every JSON line under ``prefix`` of the test bucket (gzip or not)."""
    found: list[dict[str, Any]] = []
    listing = s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix=prefix).get("Contents", [])
    for item in listing:
        body = s3.get_object(Bucket=TEST_BUCKET, Key=item["Key"])["Body"].read()
        body = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        found.extend(json.loads(line) for line in body.splitlines() if line)
    return found


def create_stream(firehose: Any, prefix: str) -> str:
    name = f"{prefix.rstrip('/')}-{uuid.uuid4().hex[:8]}"
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{TEST_BUCKET}",
            "Prefix": prefix,
        },
    )
    return name


@pytest.fixture
def prod_streams(moto_endpoint: str, bucket: str) -> tuple[Any, str, str]:
    """The prod stage's two streams in moto, both into the test bucket."""
    firehose = aws_client("firehose", moto_endpoint)
    return firehose, create_stream(firehose, "raw/"), create_stream(firehose, "rejected/")


def prod_app(
    monkeypatch: pytest.MonkeyPatch, events_client: Any, rejects_client: Any, **settings: Any
) -> Client:
    """app.py's own wiring with the prod stage's settings and the given clients."""
    prod = dataclasses.replace(app_module.SETTINGS, stage="prod", sink="firehose", **settings)
    monkeypatch.setattr(app_module, "SETTINGS", prod)
    monkeypatch.setitem(app_module._clients, "firehose", events_client)
    monkeypatch.setitem(app_module._clients, "firehose-rejects", rejects_client)
    monkeypatch.setattr(app_module, "collector", app_module._make_collector())
    return Client(app_module.app, stage_name="dev")


def post(client: Client, raw: bytes, content_type: str = "application/json") -> Any:
    return client.http.post("/events", headers={"Content-Type": content_type}, body=raw)


MIXED = batch(event(eventId="good-1"), event(eventId="bad-1", value="high"), {"nope": 1})


def test_prod_keeps_rejects_in_the_second_stream(
    monkeypatch: pytest.MonkeyPatch, prod_streams: tuple[Any, str, str], s3: Any
) -> None:
    firehose, events, rejects = prod_streams
    with prod_app(
        monkeypatch, firehose, firehose, stream_name=events, rejects_stream_name=rejects
    ) as client:
        ok = post(client, body_bytes(MIXED))
        refused = post(client, b"\xff not json " + b"x" * 100, "text/plain")
    assert ok.status_code == 200 and ok.json_body["accepted"] == 1
    assert [r["index"] for r in ok.json_body["rejected"]] == [1, 2]
    assert refused.status_code == 400
    assert [r["eventId"] for r in read_lines(s3, "raw/")] == ["good-1"]
    kept = read_lines(s3, "rejected/")  # in key order: one object per request here
    first, second = sorted((r for r in kept if "index" in r), key=lambda r: r["index"])
    [body] = [r for r in kept if "index" not in r]
    assert (first["index"], second["index"], len(kept)) == (1, 2, 3)
    assert first["event"] == MIXED["events"][1] and second["event"] == {"nope": 1}
    assert first["requestId"] == second["requestId"] != body["requestId"]
    assert first["context"] == MIXED["context"] and first["sentAt"] == SENT_AT
    assert first["schemaVersion"] == SCHEMA_VERSION and "value" in first["reason"]
    assert body["status"] == 400 and body["bodyEncoding"] == "base64"
    assert body["reason"] == refused.json_body["message"]
    # One Firehose object per flush under rejected/, never an S3 PUT of the app's own.
    assert all(key.startswith("rejected/") for key in _keys(s3, "rejected/"))
    sink = app_module._make_reject_sink()
    assert isinstance(sink, FirehoseSink) and sink._stream_name == rejects
    assert sink._budget == app_module.REJECTS_TIME_BUDGET_SECONDS <= 1


def _keys(s3: Any, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in listing]


def test_prod_without_a_rejects_stream_warns_once_and_keeps_none(
    monkeypatch: pytest.MonkeyPatch,
    prod_streams: tuple[Any, str, str],
    s3: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    firehose, events, _ = prod_streams
    with caplog.at_level(logging.WARNING, logger=app_module.app.log.name):
        client = prod_app(monkeypatch, firehose, firehose, stream_name=events)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "REJECTS_STREAM_NAME is not set" in warnings[0]
    with client:
        assert post(client, body_bytes(MIXED)).status_code == 200
    assert read_lines(s3, "rejected/") == []


class FakeFirehose(http.server.ThreadingHTTPServer):
    """Answers every call with a retryable error, or only after ``delay`` seconds."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        super().__init__(("127.0.0.1", 0), _FakeHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    server: FakeFirehose

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.calls += 1
        time.sleep(self.server.delay)
        payload = b'{"__type":"ServiceUnavailableException","message":"slow down"}'
        try:
            self.send_response(500)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up first
            pass

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(params=[0.0, 5.0], ids=["failing", "hanging"])
def fake_firehose(request: pytest.FixtureRequest) -> Iterator[FakeFirehose]:
    server = FakeFirehose(delay=request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_failing_rejects_stream_never_changes_the_answer(
    monkeypatch: pytest.MonkeyPatch,
    prod_streams: tuple[Any, str, str],
    fake_firehose: FakeFirehose,
    s3: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    firehose, events, _ = prod_streams
    broken = make_client(
        "firehose",
        region="us-east-1",
        endpoint_url=fake_firehose.url,
        config=app_module._REJECTS_BOTO_CONFIG,
    )
    client = prod_app(monkeypatch, firehose, broken, stream_name=events, rejects_stream_name="r")
    with client, caplog.at_level(logging.INFO, logger=app_module.app.log.name):
        started = time.monotonic()
        ok = post(client, body_bytes(MIXED))
        refused = post(client, b"{", "application/json")
        elapsed = time.monotonic() - started
    assert ok.status_code == 200 and ok.json_body["accepted"] == 1
    assert refused.status_code == 400 and "not valid JSON" in refused.json_body["message"]
    assert [r["eventId"] for r in read_lines(s3, "raw/")] == ["good-1"]
    assert fake_firehose.calls >= 2
    # Each answer waited at most the rejects budget plus one cut-short call.
    assert elapsed < 2 * (app_module.REJECTS_TIME_BUDGET_SECONDS + 2.0)
    assert app_module.collector.rejects_lost == 3
    # The two requests' own log lines (others, from background work, may be captured too).
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage()[:1] == "{"]
    lines = [line for line in logged if line.get("event") == "collect"]
    assert [line.get("rejectsLost") for line in lines] == [2, 1]
    assert all(line["rejectsError"] for line in lines)


def test_dev_keeps_rejects_under_the_data_folder(chalice_local: tuple[str, Path]) -> None:
    base, data_dir = chalice_local
    tag = uuid.uuid4().hex
    bad = event(eventId=f"dev-bad-{tag}", sessionId=None)
    body = body_bytes(batch(event(eventId=f"dev-good-{tag}"), bad))
    status, _, answer = request(base, "POST", "/events", body, **{"Content-Type": "text/plain"})
    assert status == 200 and json.loads(answer)["accepted"] == 1
    status, _, _ = request(
        base, "POST", "/events", f"garbage {tag}".encode(), **{"Content-Type": "text/plain"}
    )
    assert status == 400
    files = list((data_dir / "rejected").rglob("*.ndjson"))
    assert files and all(
        len(p.relative_to(data_dir).parts) == 6 for p in files
    )  # …/YYYY/MM/DD/HH/f
    kept = [json.loads(line) for path in files for line in path.read_bytes().splitlines()]
    [event_record] = [r for r in kept if r.get("event") == bad]
    assert event_record["index"] == 1 and event_record["requestId"]
    assert event_record["context"]["device"] == "my-device"
    [body_record] = [r for r in kept if r.get("body") == f"garbage {tag}"]
    assert body_record["status"] == 400 and body_record["bodyEncoding"] == "text"
    assert body_record["requestId"] and body_record["requestId"] != event_record["requestId"]
