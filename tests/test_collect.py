"""chalicelib/ingest/collect.py: the /events service without HTTP — a body and its headers
in, an answer out; what it stores, what it keeps as rejects, what it logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from chalicelib.config import Limits
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink
from tests.factories import SENT_AT, batch, body_bytes, event
from tests.test_rejects import Observer

NOW_MS = SENT_AT + 500
LOGGER = logging.getLogger("test-collect")


def collector(sink: MemorySink, rejects: MemorySink | None = None, **options: Any) -> Collector:
    return Collector(
        BatchValidator(Limits()),
        lambda: sink,
        LOGGER,
        clock_ms=lambda: NOW_MS,
        reject_sink_factory=(lambda: rejects) if rejects is not None else None,
        **options,
    )


def test_a_batch_is_answered_and_its_valid_events_stored_in_one_write() -> None:
    sink, seen = MemorySink(), Observer()
    body = body_bytes(batch(event(eventId="a"), {"metricName": "x"}, event(eventId="b")))
    answer = collector(sink, observers=[seen]).collect(body, "application/json", "r-1")
    assert answer.status == 200 and answer.body["accepted"] == 2
    assert [r["index"] for r in answer.body["rejected"]] == [1]
    assert [json.loads(line)["eventId"] for line in sink.lines()] == ["a", "b"]
    assert seen.stored_lines == sink.records
    assert [r["index"] for r in seen.rejected_records] == [1]


def test_refused_events_go_to_the_rejects_sink_with_the_request_id() -> None:
    sink, rejects = MemorySink(), MemorySink()
    body = body_bytes(batch({"metricName": "x"}))
    collector(sink, rejects).collect(body, "application/json", "r-2")
    [record] = [json.loads(line) for line in rejects.lines()]
    assert record["requestId"] == "r-2" and record["index"] == 0 and sink.records == []


def test_a_sink_that_fails_is_a_503_and_nothing_is_stored() -> None:
    sink = MemorySink()
    sink.fail_next = 1
    answer = collector(sink).collect(body_bytes(batch()), "application/json", "r-3")
    assert answer.status == 503 and "send the batch again" in answer.body["message"]
    assert sink.records == []


def test_a_body_refused_whole_is_one_reject_and_a_4xx(caplog: pytest.LogCaptureFixture) -> None:
    sink, rejects = MemorySink(), MemorySink()
    caplog.set_level(logging.INFO, logger=LOGGER.name)
    answer = collector(sink, rejects).collect(b"{not json", "application/json", "r-4")
    assert answer.status == 400
    [record] = [json.loads(line) for line in rejects.lines()]
    assert record["status"] == 400 and record["body"] == "{not json"
    [line] = [json.loads(r.getMessage()) for r in caplog.records]
    assert line["event"] == "collect" and line["status"] == 400 and line["requestId"] == "r-4"


def test_an_origin_outside_the_allow_list_is_refused_before_parsing() -> None:
    sink = MemorySink()
    refuse = collector(sink, allowed_origins=("https://app.example.com",))
    answer = refuse.collect(
        body_bytes(batch()), "application/json", "r-5", {"origin": "https://evil.example"}
    )
    assert answer.status == 403 and sink.records == []
