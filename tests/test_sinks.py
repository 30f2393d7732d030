"""Sinks: Firehose (moto for the happy path, Stubber for failures), local directory, memory."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from chalicelib.sinks import (
    FIREHOSE_MAX_RECORD_BYTES,
    FirehoseSink,
    LocalDirectorySink,
    SinkUnavailable,
    chunk_for_put,
    pack_records,
)
from tests.conftest import aws_client


def lines(count: int, size: int = 100, tag: str = "e") -> list[bytes]:
    out = []
    for index in range(count):
        body = json.dumps({"eventId": f"{tag}-{index}", "pad": ""}).encode()
        pad = max(0, size - len(body) - 1)
        out.append(json.dumps({"eventId": f"{tag}-{index}", "pad": "x" * pad}).encode() + b"\n")
    return out


# --- packing ------------------------------------------------------------------------------


def test_one_request_becomes_one_record() -> None:
    assert pack_records(lines(25)) == [b"".join(lines(25))]


def test_packing_respects_the_record_limit_and_keeps_lines_whole() -> None:
    big = lines(70, size=32 * 1024)
    packed = pack_records(big)
    assert len(packed) == 3
    assert all(len(record) <= FIREHOSE_MAX_RECORD_BYTES for record in packed)
    assert b"".join(packed) == b"".join(big)
    assert all(record.endswith(b"\n") for record in packed)


@pytest.mark.parametrize(
    ("sizes", "max_records", "max_bytes", "expected"),
    [
        ([1] * 5, 2, 100, [2, 2, 1]),
        ([40, 40, 40], 500, 100, [2, 1]),
        ([100], 500, 100, [1]),
        ([], 500, 100, []),
    ],
)
def test_put_chunks_stay_within_count_and_size(
    sizes: list[int], max_records: int, max_bytes: int, expected: list[int]
) -> None:
    records = [b"x" * size for size in sizes]
    chunks = chunk_for_put(records, max_records=max_records, max_bytes=max_bytes)
    assert [len(chunk) for chunk in chunks] == expected


# --- Firehose against a real moto server ---------------------------------------------------


def test_firehose_delivers_newline_delimited_events_to_s3(moto_endpoint: str, s3: Any) -> None:
    s3.create_bucket(Bucket="firehose-dest")
    firehose = aws_client("firehose", moto_endpoint)
    firehose.create_delivery_stream(
        DeliveryStreamName="events",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::firehose-dest",
            "Prefix": "raw/",
        },
    )
    sent = lines(30)
    FirehoseSink(firehose, "events").write(sent)
    objects = s3.list_objects_v2(Bucket="firehose-dest", Prefix="raw/")["Contents"]
    received = b""
    for item in objects:
        body = s3.get_object(Bucket="firehose-dest", Key=item["Key"])["Body"].read()
        received += gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    assert sorted(received.splitlines()) == sorted(line.rstrip(b"\n") for line in sent)
    assert objects[0]["Key"].startswith("raw/")


# --- Firehose failures through a Stubber ------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def stubbed_sink(budget: float = 8.0) -> tuple[FirehoseSink, Stubber, FakeClock]:
    client = aws_client("firehose", "http://127.0.0.1:9")  # never reached: stubbed
    stubber = Stubber(client)
    clock = FakeClock()
    sink = FirehoseSink(
        client, "events", time_budget_seconds=budget, sleep=clock.sleep, monotonic=clock.monotonic
    )
    return sink, stubber, clock


def expect_put(stubber: Stubber, records: list[bytes], error_codes: list[str | None]) -> None:
    answers = [
        {"ErrorCode": code, "ErrorMessage": "slow down"} if code else {"RecordId": f"id-{i}"}
        for i, code in enumerate(error_codes)
    ]
    stubber.add_response(
        "put_record_batch",
        {"FailedPutCount": sum(1 for c in error_codes if c), "RequestResponses": answers},
        {"DeliveryStreamName": "events", "Records": [{"Data": r} for r in records]},
    )


def big_records(count: int) -> list[bytes]:
    # Lines this big pack one per Firehose record, so each record is one line here.
    return lines(count, size=FIREHOSE_MAX_RECORD_BYTES - 10, tag="big")


def test_only_the_failed_records_are_resent() -> None:
    sink, stubber, clock = stubbed_sink()
    records = big_records(3)
    expect_put(stubber, records, [None, "ServiceUnavailableException", None])
    expect_put(stubber, [records[1]], [None])
    with stubber:
        sink.write(records)
    stubber.assert_no_pending_responses()
    assert len(clock.sleeps) == 1


def test_throttling_error_retries_the_whole_call_with_backoff() -> None:
    sink, stubber, clock = stubbed_sink()
    records = lines(5)
    packed = pack_records(records)
    for _ in range(3):
        stubber.add_client_error(
            "put_record_batch",
            service_error_code="ServiceUnavailableException",
            http_status_code=503,
        )
    expect_put(stubber, packed, [None])
    with stubber:
        sink.write(records)
    stubber.assert_no_pending_responses()
    assert len(clock.sleeps) == 3
    # Full jitter under a doubling cap.
    assert all(0 <= delay <= 0.05 * 2**attempt for attempt, delay in enumerate(clock.sleeps))


def test_records_still_failing_when_the_budget_ends_raise_unavailable() -> None:
    sink, stubber, clock = stubbed_sink(budget=1.0)
    records = big_records(2)
    expect_put(stubber, records, ["ServiceUnavailableException", None])
    for _ in range(40):
        expect_put(stubber, [records[0]], ["ServiceUnavailableException"])
    with stubber, pytest.raises(SinkUnavailable) as caught:
        sink.write(records)
    assert caught.value.undelivered == 1
    assert clock.now <= 1.0


def test_configuration_errors_are_not_retried() -> None:
    sink, stubber, clock = stubbed_sink()
    stubber.add_client_error("put_record_batch", service_error_code="ResourceNotFoundException")
    with stubber, pytest.raises(SinkUnavailable) as caught:
        sink.write(lines(2))
    assert "ResourceNotFoundException" in str(caught.value)
    assert clock.sleeps == []


def test_more_than_one_put_call_when_a_request_exceeds_4_mib() -> None:
    sink, stubber, _ = stubbed_sink()
    records = big_records(6)  # ~6 MB: two PutRecordBatch calls
    expect_put(stubber, records[:4], [None] * 4)
    expect_put(stubber, records[4:], [None] * 2)
    with stubber:
        sink.write(records)
    stubber.assert_no_pending_responses()


def test_the_budget_holds_across_put_calls_not_only_between_retries() -> None:
    """Slow Firehose calls stay within the time budget: a call that ends past it leaves the
    next ones unsent (the client resends; duplicates are removed)."""
    sink, stubber, clock = stubbed_sink(budget=1.0)
    records = big_records(8)  # two PutRecordBatch calls
    expect_put(stubber, records[:4], [None] * 4)
    real_put = sink._put_once

    def slow_put(pending: list[bytes]) -> tuple[list[bytes], str]:
        clock.now += 1.5  # this call alone outlasts the budget
        return real_put(pending)

    sink._put_once = slow_put  # type: ignore[method-assign]
    with stubber, pytest.raises(SinkUnavailable) as caught:
        sink.write(records)
    assert caught.value.undelivered == 4
    stubber.assert_no_pending_responses()


# --- local directory ------------------------------------------------------------------------

FIXED_NOW = datetime(2026, 11, 28, 15, 42, tzinfo=UTC)


def read_lines(root: Path) -> list[bytes]:
    out = []
    for path in sorted(root.rglob("*.ndjson")):
        out.extend(path.read_bytes().splitlines())
    return out


def test_local_sink_uses_the_firehose_layout(tmp_path: Path) -> None:
    written: list[str] = []
    sink = LocalDirectorySink(tmp_path, now=lambda: FIXED_NOW, on_written=written.append)
    sink.write(lines(3))
    [path] = list(tmp_path.rglob("*.ndjson"))
    assert (
        path.relative_to(tmp_path)
        .as_posix()
        .startswith("raw/2026/11/28/15/events-2026-11-28-15-42-")
    )
    assert written == [path.relative_to(tmp_path).as_posix()]
    assert path.read_bytes() == b"".join(lines(3))


def test_concurrent_threads_never_interleave_lines(tmp_path: Path) -> None:
    sink = LocalDirectorySink(tmp_path, now=lambda: FIXED_NOW)

    def writer(tag: str) -> None:
        for batch_index in range(50):
            sink.write(lines(10, size=2000, tag=f"{tag}-{batch_index}"))

    threads = [threading.Thread(target=writer, args=(f"t{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = read_lines(tmp_path)
    assert len(stored) == 8 * 50 * 10
    assert len({json.loads(line)["eventId"] for line in stored}) == 4000


def _process_writer(root: str, tag: str) -> None:
    sink = LocalDirectorySink(root, now=lambda: FIXED_NOW)
    # Same file for every process: force it so the processes really contend.
    sink.key_for = lambda moment: "raw/2026/11/28/15/shared.ndjson"  # type: ignore[method-assign]
    for batch_index in range(40):
        sink.write(lines(10, size=3000, tag=f"{tag}-{batch_index}"))


def test_concurrent_processes_never_interleave_lines(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_process_writer, args=(str(tmp_path), f"p{n}")) for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    stored = (tmp_path / "raw/2026/11/28/15/shared.ndjson").read_bytes().splitlines()
    assert len(stored) == 4 * 40 * 10
    assert all(json.loads(line)["pad"] for line in stored)


def test_a_torn_last_line_is_terminated_before_the_next_append(tmp_path: Path) -> None:
    sink = LocalDirectorySink(tmp_path, now=lambda: FIXED_NOW)
    sink.write(lines(1, tag="before"))
    [path] = list(tmp_path.rglob("*.ndjson"))
    with path.open("ab") as handle:
        handle.write(b'{"eventId": "torn", "pa')  # a writer died here
    sink.write(lines(2, tag="after"))
    stored = path.read_bytes().splitlines()
    assert stored[1] == b'{"eventId": "torn", "pa'
    assert [json.loads(line)["eventId"] for line in (stored[0], *stored[2:])] == [
        "before-0",
        "after-0",
        "after-1",
    ]


def test_unwritable_directory_is_sink_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "raw"
    blocker.write_text("a file where the folder should be")
    sink = LocalDirectorySink(tmp_path, now=lambda: FIXED_NOW)
    with pytest.raises(SinkUnavailable):
        sink.write(lines(1))


def test_a_failing_callback_never_turns_a_stored_write_into_a_failure(tmp_path: Path) -> None:
    def explode(key: str) -> None:
        raise ValueError("conversion broke")

    sink = LocalDirectorySink(tmp_path, now=lambda: FIXED_NOW, on_written=explode)
    sink.write(lines(2))  # no exception: the lines are stored
    assert len(read_lines(tmp_path)) == 2
