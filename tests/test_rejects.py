"""Rejected input as records: every rejected event and every body refused whole is kept,
best effort, without changing what the client is told."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from chalicelib.config import Limits
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator, iso_ms
from chalicelib.rejects.record import MAX_KEPT_REJECT_BYTES, SCHEMA_VERSION, body_reject
from chalicelib.sinks import MemorySink
from tests.factories import SENT_AT, batch, body_bytes, event

NOW_MS = SENT_AT + 500
LOG = logging.getLogger("test-rejects")


class Observer:
    def __init__(self) -> None:
        self.stored_lines: list[bytes] = []
        self.rejected_records: list[dict[str, Any]] = []

    def stored(self, records: Sequence[bytes]) -> None:
        self.stored_lines.extend(records)

    def rejected(self, records: Sequence[dict[str, Any]]) -> None:
        self.rejected_records.extend(records)


def collector(rejects: MemorySink, events: MemorySink | None = None, **kwargs: Any) -> Collector:
    events = events or MemorySink()
    return Collector(
        BatchValidator(Limits()),
        lambda: events,
        LOG,
        clock_ms=lambda: NOW_MS,
        reject_sink_factory=lambda: rejects,
        **kwargs,
    )


def kept(sink: MemorySink) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.lines()]


def test_each_rejected_event_is_kept_with_its_reason_and_batch_context() -> None:
    rejects = MemorySink()
    bad = event(eventId="bad-1", timestamp="yesterday")
    answer = collector(rejects).collect(
        body_bytes(batch(event(eventId="good"), bad)), "application/json", "req-1"
    )
    assert answer.status == 200 and answer.body["accepted"] == 1
    [record] = kept(rejects)
    assert record["receivedAt"] == iso_ms(NOW_MS) and record["requestId"] == "req-1"
    assert record["index"] == 1 and record["event"] == bad
    assert record["context"]["device"] == "my-device" and record["sentAt"] == SENT_AT
    assert record["schemaVersion"] == SCHEMA_VERSION and "timestamp" in record["reason"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "encoding"),
    [
        (b'{"events": [', "application/json", 400, "text"),
        (b"\xff\xfe binary", "text/plain", 400, "base64"),
        # Short, or ending unfinished without being cut: not text, kept exactly.
        (b"\xff\xfe", "text/plain", 400, "base64"),
        (b'{"events": [] \xc3', "text/plain", 400, "base64"),
        (b"a=b", "application/x-www-form-urlencoded", 415, "text"),
        (body_bytes({"events": [{}] * 501}), "application/json", 413, "text"),
    ],
)
def test_a_body_refused_whole_is_kept_with_its_first_64_kib(
    raw: bytes, content_type: str, status: int, encoding: str
) -> None:
    rejects = MemorySink()
    answer = collector(rejects).collect(raw, content_type, "req-2")
    assert answer.status == status
    [record] = kept(rejects)
    assert record["status"] == status and record["reason"] == answer.body["message"]
    assert record["bodyEncoding"] == encoding and record["bodyBytes"] == len(raw)
    body = record["body"].encode() if encoding == "text" else base64.b64decode(record["body"])
    assert body == raw[:MAX_KEPT_REJECT_BYTES]


def test_a_huge_body_keeps_only_its_first_64_kib() -> None:
    record = body_reject(
        received_at="t",
        request_id="r",
        status=413,
        reason="big",
        raw=b"x" * 2_000_000,
        content_type="application/json",
    )
    assert len(record["body"]) == MAX_KEPT_REJECT_BYTES and record["bodyBytes"] == 2_000_000


def test_a_cut_multibyte_character_stays_text() -> None:
    raw = b"a" * (MAX_KEPT_REJECT_BYTES - 1) + "é".encode()
    record = body_reject(
        received_at="t", request_id="r", status=400, reason="x", raw=raw, content_type=None
    )
    assert record["bodyEncoding"] == "text" and record["body"] == "a" * (MAX_KEPT_REJECT_BYTES - 1)


def test_an_event_too_big_to_keep_whole_is_kept_as_cut_text() -> None:
    rejects = MemorySink()
    huge = event(metricAttributes={f"k{i}": "x" * 4000 for i in range(30)})
    collector(rejects).collect(body_bytes(batch(huge)), "application/json", "r")
    [record] = kept(rejects)
    assert "event" not in record and record["eventTruncated"] is True
    assert len(record["eventText"]) == MAX_KEPT_REJECT_BYTES


class BrokenSink:
    def write(self, records: Sequence[bytes]) -> None:
        raise RuntimeError("rejects stream is gone")


def test_a_failing_rejects_sink_never_changes_the_answer(caplog: pytest.LogCaptureFixture) -> None:
    events = MemorySink()
    broken = Collector(
        BatchValidator(Limits()),
        lambda: events,
        LOG,
        clock_ms=lambda: NOW_MS,
        reject_sink_factory=BrokenSink,
    )
    with caplog.at_level(logging.INFO, logger=LOG.name):
        ok = broken.collect(body_bytes(batch(event(), {})), "application/json", "r")
        bad = broken.collect(b"nope", "application/json", "r")
    assert ok.status == 200 and ok.body["accepted"] == 1 and len(ok.body["rejected"]) == 1
    assert bad.status == 400
    assert broken.rejects_lost == 2
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert [line.get("rejectsLost") for line in lines] == [1, 1]
    assert "rejects stream is gone" in lines[0]["rejectsError"]


def test_no_rejects_are_kept_when_the_batch_will_be_sent_again() -> None:
    rejects, events = MemorySink(), MemorySink()
    events.fail_next = 1
    answer = collector(rejects, events).collect(
        body_bytes(batch(event(), {})), "application/json", "r"
    )
    assert answer.status == 503 and kept(rejects) == []


def test_observers_see_what_was_stored_and_refused() -> None:
    observer = Observer()
    collector(MemorySink(), observers=[observer]).collect(
        body_bytes(batch(event(eventId="kept"), {})), "application/json", "r"
    )
    assert [json.loads(line)["eventId"] for line in observer.stored_lines] == ["kept"]
    assert [record["index"] for record in observer.rejected_records] == [1]


def test_a_garbage_batch_keeps_rejects_about_the_size_of_its_body() -> None:
    """32 context keys of 4096 emoji and 500 events `1` (525 KB) make reject records of
    about the body's size: the context is kept once per request, not once per event."""
    rejects = MemorySink()
    context = {f"k{i}": "😀" * 4096 for i in range(32)}
    raw = json.dumps({"context": context, "events": [1] * 500}, ensure_ascii=False).encode()
    answer = collector(rejects).collect(raw, "application/json", "r")
    assert answer.status == 200 and answer.body["rejectedCount"] == 500
    size = sum(len(record) for record in rejects.records)
    assert size < 1.5 * len(raw), (size, len(raw))
    records = kept(rejects)
    assert len(records) == 500 and "context" in records[0]
    assert all(record["contextOf"] == 0 for record in records[1:])
