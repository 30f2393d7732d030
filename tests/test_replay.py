"""chalicelib.rejects.replay: stored rejects validated again and sent on as the route would have
stored them (ids, timestamps, context), each once whatever the number of runs."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Limits
from chalicelib.ingest.validate import BatchValidator, iso_ms
from chalicelib.rejects import replay as replay_module
from chalicelib.rejects.record import MAX_KEPT_REJECT_BYTES, body_reject, encode, event_rejects
from chalicelib.rejects.replay import ReplayError, replay
from chalicelib.rejects.revalidate import (
    NAMESPACE,
    NOT_A_RECORD,
    UNREPLAYABLE_CUT_BODY,
    UNREPLAYABLE_CUT_EVENT,
    key_bytes,
    replay_key,
)
from chalicelib.sinks import MemorySink, Sink, SinkUnavailable
from chalicelib.storage.local import LocalStore
from tests.factories import MISSING, SENT_AT, batch, body_bytes, event

DAY = date(2026, 11, 28)
RECEIVED_MS = int(datetime(2026, 11, 28, 10, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000)
RECEIVED = iso_ms(RECEIVED_MS)
RAISED = Limits(max_event_bytes=64 * 1024, max_events_per_batch=600)
BIG_ATTRIBUTES = {f"k{i}": "x" * 4000 for i in range(9)}  # ~36 KB stored: over 32 KiB


def store_rejects(root: Path, records: Sequence[dict[str, Any]], name: str = "a.ndjson") -> None:
    path = root / "rejected" / "2026" / "11" / "28" / "10" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.writelines(encode(records))


def rejects_of(body: dict[str, Any], request_id: str = "req-1") -> list[dict[str, Any]]:
    """What the route keeps for ``body`` under the default limits."""
    result = BatchValidator(Limits()).process(body, RECEIVED_MS)
    return event_rejects(
        received_at=RECEIVED, request_id=request_id, body=body, rejections=result.rejected
    )


def stored(sink: MemorySink) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.lines()]


def run(root: Path, sink: Sink | None, limits: Limits = RAISED) -> replay_module.ReplayReport:
    return replay(LocalStore(root), [DAY], limits=limits, sink=sink)


def test_a_replayed_event_is_the_record_the_route_would_have_stored(tmp_path: Path) -> None:
    body = batch(
        event(eventId="big", metricAttributes=BIG_ATTRIBUTES, timestamp=SENT_AT - 2000),
        event(eventId=MISSING, metricAttributes=BIG_ATTRIBUTES),
    )
    store_rejects(tmp_path, rejects_of(body))
    sink = MemorySink()
    report = run(tmp_path, sink)
    assert report.replayed == 2 and not report.still_invalid
    first, second = stored(sink)
    # The same validator, at the moment of receipt, gives the same record.
    expected = BatchValidator(RAISED, new_event_id=lambda: "x").process(body, RECEIVED_MS)
    assert first == json.loads(expected.records[0])
    assert first["serverTimestamp"] == RECEIVED and first["eventId"] == "big"
    assert first["derivedTimestamp"] == iso_ms(RECEIVED_MS - 2000)
    assert first["device"] == "my-device" and first["appVersion"] == "1.0.0"
    # No eventId sent: one derived from the reject, the same on every replay.
    assert second["eventId"] == str(replay_key("req-1", RECEIVED, 1))
    assert run(tmp_path, None).already_replayed == 2


def test_a_second_replay_sends_nothing_and_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    store_rejects(tmp_path, rejects_of(batch(event(metricAttributes=BIG_ATTRIBUTES))))
    before = sorted(p for p in tmp_path.rglob("*"))
    dry = run(tmp_path, None)
    assert (dry.replayed, dry.ledgers) == (1, [])
    assert sorted(p for p in tmp_path.rglob("*")) == before
    sink = MemorySink()
    first = run(tmp_path, sink)
    [ledger] = first.ledgers
    assert ledger.startswith(str(tmp_path / "replayed" / "2026" / "11" / "28" / "replay-"))
    second = run(tmp_path, sink)
    assert (first.replayed, second.replayed, second.already_replayed) == (1, 0, 1)
    assert len(sink.lines()) == 1 and second.ledgers == []


def test_still_invalid_events_are_counted_by_reason(tmp_path: Path) -> None:
    body = batch(event(value="high"), event(value="low"), event(metricAttributes=BIG_ATTRIBUTES))
    store_rejects(tmp_path, rejects_of(body))
    sink = MemorySink()
    report = run(tmp_path, sink, Limits())  # nothing was fixed
    assert report.replayed == 0 and sink.records == []
    assert report.still_invalid == {
        "event.value must be number or null": 2,
        next(r for r in report.still_invalid if r.startswith("event is ")): 1,
    }


def test_bodies_refused_whole_are_replayed_when_they_now_parse(tmp_path: Path) -> None:
    tiny = {"timestamp": SENT_AT, "sessionId": "s", "metricName": "Tiny"}
    too_many = body_bytes({"sentAt": SENT_AT, "events": [tiny] * 501})
    records = [
        body_reject(
            received_at=RECEIVED,
            request_id=f"body-{i}",
            status=400,
            reason="r",
            raw=raw,
            content_type=kind,
        )
        for i, (raw, kind) in enumerate(
            [
                (too_many, "application/json"),
                (b'{"events": [', "application/json"),
                (b"\xff\xfe", "text/plain"),
                (b"x" * (MAX_KEPT_REJECT_BYTES + 1), "application/json"),
                (body_bytes(batch()), "application/x-www-form-urlencoded"),
            ]
        )
    ]
    store_rejects(tmp_path, records)
    sink = MemorySink()
    report = run(tmp_path, sink)
    lines = stored(sink)
    assert report.replayed == len(lines) == 501
    assert len({line["eventId"] for line in lines}) == 501
    assert lines[7]["eventId"] == str(replay_key("body-0", RECEIVED, 7))
    assert all(line["serverTimestamp"] == RECEIVED for line in lines)
    reasons = set(report.still_invalid)
    assert sum(report.still_invalid.values()) == 3
    assert any(r.startswith("body is not valid JSON") for r in reasons)
    assert any(r.startswith("body is not valid UTF-8") for r in reasons)
    assert any(r.startswith("Content-Type application/x-www-form-urlencoded") for r in reasons)
    assert report.not_replayable == {UNREPLAYABLE_CUT_BODY: 1}
    assert base64.b64decode(records[2]["body"]) == b"\xff\xfe"


def test_what_cannot_be_replayed_is_counted_not_sent(tmp_path: Path) -> None:
    huge = event(metricAttributes={f"k{i}": "x" * 4000 for i in range(30)})
    store_rejects(tmp_path, rejects_of(batch(huge)))
    store_rejects(tmp_path, [{"receivedAt": "yesterday", "requestId": "r", "index": 0}])
    (tmp_path / "rejected" / "2026" / "11" / "28" / "10" / "b.ndjson").write_bytes(b"{broken\n[]\n")
    report = run(tmp_path, MemorySink())
    assert report.replayed == 0
    assert report.not_replayable == {
        UNREPLAYABLE_CUT_EVENT: 1,
        NOT_A_RECORD: 1,
        replay_module.NOT_READABLE: 2,
    }


def test_a_reject_stored_twice_is_sent_once(tmp_path: Path) -> None:
    records = rejects_of(batch(event(metricAttributes=BIG_ATTRIBUTES)))
    store_rejects(tmp_path, records, "a.ndjson")
    store_rejects(tmp_path, records, "b.ndjson")  # at-least-once delivery
    sink = MemorySink()
    report = run(tmp_path, sink)
    assert (report.replayed, report.repeated, len(sink.lines())) == (1, 1, 1)


class FailingAfter:
    """Takes ``writes`` writes, then fails like a Firehose that stopped taking records."""

    def __init__(self, writes: int) -> None:
        self.writes = writes
        self.lines: list[bytes] = []

    def write(self, records: Sequence[bytes]) -> None:
        if not self.writes:
            raise SinkUnavailable("Firehose did not take 2 record(s) in time", len(records))
        self.writes -= 1
        self.lines.extend(records)


def test_a_sink_failure_keeps_the_ledger_of_what_was_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "FLUSH_LINES", 2)
    body = batch(*(event(metricAttributes=BIG_ATTRIBUTES) for _ in range(5)))
    store_rejects(tmp_path, rejects_of(body))
    failing = FailingAfter(writes=1)
    with pytest.raises(ReplayError, match=r"2 event\(s\) were sent before that") as caught:
        run(tmp_path, failing)
    assert caught.value.report.replayed == 2 and len(caught.value.report.ledgers) == 1
    sink = MemorySink()
    again = run(tmp_path, sink)
    assert (again.replayed, again.already_replayed) == (3, 2)
    sent = {json.loads(line)["eventId"] for line in [*failing.lines, *sink.lines()]}
    assert sent == {e["eventId"] for e in body["events"]}


def test_a_context_that_no_longer_passes_keeps_the_event_rejected(tmp_path: Path) -> None:
    [record] = rejects_of(batch(event(value="x")))
    record["context"] = {"eventId": "shadow"}  # a reserved name: the envelope refuses it
    store_rejects(tmp_path, [record])
    report = run(tmp_path, MemorySink())
    [reason] = report.still_invalid
    assert reason.startswith("body.context keys must be identifiers")


def test_replay_keys_are_uuid5_names() -> None:
    for request_id, index in (("req-1", 0), ("é", 499), ("", -1)):
        expected = uuid.uuid5(NAMESPACE, f"{request_id}\n{RECEIVED}\n{index}")
        assert key_bytes(request_id, RECEIVED, index) == expected.bytes
    # A lone surrogate (possible in JSON) still gives a key, where uuid5 would raise.
    assert len(key_bytes("\udcff", RECEIVED, 0)) == 16


def test_an_event_sent_as_null_is_still_invalid_not_cut(tmp_path: Path) -> None:
    store_rejects(tmp_path, rejects_of(batch(event(), None)))  # type: ignore[arg-type]
    report = run(tmp_path, MemorySink())
    assert report.still_invalid == {"event must be a JSON object, got null": 1}


def test_a_large_context_is_kept_once_and_given_back_to_every_event(tmp_path: Path) -> None:
    """Past 1 KiB a batch context is kept once, in the request's first record (not once per
    rejected event); replay gives it to all of them."""
    context = {f"k{i}": "x" * 1000 for i in range(20)}  # ~20 KB
    events = [event(eventId=f"e{i}", metricAttributes=BIG_ATTRIBUTES) for i in range(30)]
    body = batch(*events, context=context)
    records = rejects_of(body)
    assert "context" in records[0] and all(r["contextOf"] == 0 for r in records[1:])
    kept = sum(len(line) for line in encode(records))
    assert kept < 1.2 * len(body_bytes(body))  # about the body's size, not 30 contexts
    store_rejects(tmp_path, records)
    sink = MemorySink()
    report = run(tmp_path, sink)
    assert report.replayed == 30
    assert all(record["k19"] == "x" * 1000 for record in stored(sink))


def test_a_record_whose_context_record_is_missing_is_not_replayed(tmp_path: Path) -> None:
    context = {f"k{i}": "x" * 1000 for i in range(20)}
    body = batch(
        *(event(eventId=f"e{i}", metricAttributes=BIG_ATTRIBUTES) for i in range(3)),
        context=context,
    )
    store_rejects(tmp_path, rejects_of(body)[1:])  # the first record (with the context) lost
    sink = MemorySink()
    report = run(tmp_path, sink)
    assert report.replayed == 0 and not sink.lines()
    assert any("context" in reason for reason in report.not_replayable)


def test_a_replayed_event_gets_back_the_fields_the_server_added(tmp_path: Path) -> None:
    """Replayed records keep the user-agent fields of their request, a bot's its bot flag."""
    server = {"uaBrowser": "Chrome", "uaDeviceType": "bot", "isBot": True, "country": "DE"}
    body = batch(event(eventId="b", metricAttributes=BIG_ATTRIBUTES))
    result = BatchValidator(Limits()).process(body, RECEIVED_MS, lambda _context: server)
    records = event_rejects(
        received_at=RECEIVED,
        request_id="req-1",
        body=body,
        rejections=result.rejected,
        server_fields=result.server_fields,
    )
    assert records[0]["server"] == server
    store_rejects(tmp_path, records)
    sink = MemorySink()
    assert run(tmp_path, sink).replayed == 1
    [replayed] = stored(sink)
    assert {key: replayed[key] for key in server} == server
