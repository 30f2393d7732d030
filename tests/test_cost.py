"""exporter.cost: the arithmetic of the monthly cost model and its command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from exporter.cost import (
    API_GATEWAY_REST_PER_MILLION_REQUESTS,
    FIREHOSE_PER_GB_INGESTED,
    FIREHOSE_RECORD_INCREMENT_BYTES,
    GB,
    cost,
    firehose_billed_bytes,
    monthly_cost,
)

TEN_MILLION = 10_000_000


@pytest.mark.parametrize(
    ("record_bytes", "billed"),
    [
        (0, 0),
        (1, 5120),
        (400, 5120),
        (3 * 1024, 5120),  # AWS's own example: a 3 KB record is billed as 5 KB
        (5120, 5120),
        (5121, 10240),
        (10_000, 10240),  # 25 events x 400 B
        (12 * 1024, 15 * 1024),  # ... and a 12 KB record as 15 KB
    ],
)
def test_firehose_rounds_each_record_up_to_5_kb(record_bytes: int, billed: int) -> None:
    assert FIREHOSE_RECORD_INCREMENT_BYTES == 5 * 1024
    assert firehose_billed_bytes(record_bytes) == billed


def test_negative_record_size_refused() -> None:
    with pytest.raises(ValueError):
        firehose_billed_bytes(-1)


def test_ten_million_batched_is_under_three_dollars() -> None:
    b = monthly_cost(TEN_MILLION)
    assert b.requests == 400_000
    assert b.firehose_records == 400_000
    assert b.firehose_billed_bytes == 400_000 * 10_240
    services = b.by_service()
    assert services["API Gateway"] == pytest.approx(0.4 * API_GATEWAY_REST_PER_MILLION_REQUESTS)
    assert services["Firehose"] == pytest.approx(400_000 * 10_240 / GB * FIREHOSE_PER_GB_INGESTED)
    assert b.total < 3.0
    assert b.total == pytest.approx(sum(services.values()))
    # API Gateway is the largest line once Firehose records are batched.
    assert max(services, key=lambda s: services[s]) == "API Gateway"


def test_one_record_per_event_multiplies_firehose() -> None:
    batched = monthly_cost(TEN_MILLION)
    per_event = monthly_cost(TEN_MILLION, events_per_record=1)
    assert per_event.firehose_records == TEN_MILLION
    assert per_event.firehose_billed_bytes == TEN_MILLION * 5120
    ratio = per_event.by_service()["Firehose"] / batched.by_service()["Firehose"]
    assert ratio == pytest.approx(5120 / (10_240 / 25))  # 12.5x
    assert ratio > 10
    assert per_event.total > batched.total + 1.0
    # Everything except Firehose is unchanged by how records are packed.
    for service in ("API Gateway", "Lambda", "S3", "CloudWatch Logs"):
        assert per_event.by_service()[service] == pytest.approx(batched.by_service()[service])


def test_no_batching_at_all_is_many_times_more() -> None:
    batched = monthly_cost(TEN_MILLION)
    unbatched = monthly_cost(TEN_MILLION, events_per_request=1)
    assert unbatched.requests == TEN_MILLION
    assert unbatched.events_per_record == 1
    assert unbatched.total > 10 * batched.total


def test_partial_last_batch_is_counted() -> None:
    b = monthly_cost(26, events_per_request=25, event_bytes=400)
    assert b.requests == 2
    assert b.firehose_records == 2
    assert b.firehose_billed_bytes == 10_240 + 5_120
    c = monthly_cost(60, events_per_request=25, events_per_record=10, event_bytes=400)
    # requests of 25, 25, 10 -> records of 10, 10, 5 | 10, 10, 5 | 10
    assert c.requests == 3
    assert c.firehose_records == 7
    assert c.firehose_billed_bytes == 7 * 5120


def test_record_never_spans_requests() -> None:
    b = monthly_cost(1000, events_per_request=10, events_per_record=50)
    assert b.events_per_record == 10
    assert b.firehose_records == 100


def test_zero_events_cost_nothing() -> None:
    b = monthly_cost(0)
    assert b.total == 0
    assert b.s3_objects == 0


def test_cost_scales_roughly_linearly() -> None:
    small = monthly_cost(TEN_MILLION)
    big = monthly_cost(100 * TEN_MILLION)
    assert 50 * small.total < big.total < 110 * small.total


@pytest.mark.parametrize(
    "kwargs",
    [
        {"events_per_request": 0},
        {"events_per_record": 0},
        {"event_bytes": 0},
        {"gzip_ratio": 0},
        {"events_per_request": 500, "event_bytes": 4096},  # 2 MB record > 1,000 KiB
    ],
)
def test_invalid_inputs_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        monthly_cost(TEN_MILLION, **kwargs)


def test_cli_prints_table_with_total() -> None:
    result = CliRunner().invoke(cost, ["--events-per-month", str(TEN_MILLION)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("10,000,000 events/month, 25 per request, 25 per Firehose record")
    for service in ("API Gateway", "Lambda", "Firehose", "S3", "CloudWatch Logs"):
        assert service in out
    total_line = out.strip().splitlines()[-1]
    assert total_line.startswith("Total")
    assert float(total_line.split()[-1]) == pytest.approx(monthly_cost(TEN_MILLION).total, abs=0.01)


def test_cli_one_record_per_event_and_json() -> None:
    result = CliRunner().invoke(
        cost, ["--events-per-month", str(TEN_MILLION), "--one-record-per-event", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["events_per_record"] == 1
    assert data["firehose_records"] == TEN_MILLION
    assert data["total"] == pytest.approx(monthly_cost(TEN_MILLION, events_per_record=1).total)
    assert data["prices_checked"]


def test_cli_errors() -> None:
    conflict = CliRunner().invoke(cost, ["--one-record-per-event", "--events-per-record", "5"])
    assert conflict.exit_code == 2
    too_big = CliRunner().invoke(cost, ["--events-per-request", "500", "--event-bytes", "4096"])
    assert too_big.exit_code == 1
    assert too_big.stderr.startswith("Error: ") and "1,000 KiB" in too_big.stderr
    negative = CliRunner().invoke(cost, ["--events-per-month", "-5"])
    assert negative.exit_code == 2
