"""deploy.cost: the monthly cost model gives the bills docs/COST.md quotes, grows with
volume, shows what packing events into Firehose records saves; and its command."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import pytest
from click.testing import CliRunner

from deploy.cost import (
    Traffic,
    api_gateway_cost,
    cloudwatch_logs_cost,
    firehose_billed_bytes,
    firehose_cost,
    lambda_cost,
    monthly_cost,
    monthly_traffic,
    rejects_path_cost,
    s3_cost,
)
from deploy.cost_command import cost
from deploy.prices import FIREHOSE_RECORD_INCREMENT_BYTES, CostLine
from tests.conftest import REPO_ROOT

TEN_MILLION = 10_000_000
COST_MD = (REPO_ROOT / "docs" / "COST.md").read_text(encoding="utf-8")


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


@pytest.mark.parametrize(
    ("options", "kwargs", "dollars"),
    [
        ("", {}, "2.06"),
        ("--one-record-per-event", {"events_per_record": 1}, "3.33"),
        (
            "--events-per-request 1 --one-record-per-event",
            {"events_per_request": 1, "events_per_record": 1},
            "43.13",
        ),
        ("--storage-months 12", {"storage_months": 12}, "3.33"),
    ],
)
def test_ten_million_events_cost_what_the_docs_say(
    options: str, kwargs: dict[str, Any], dollars: str
) -> None:
    assert f"{monthly_cost(TEN_MILLION, **kwargs).total:.2f}" == dollars
    assert dollars in COST_MD, f"docs/COST.md does not quote {dollars} for {options or 'defaults'}"


def test_ten_million_rows_match_the_docs_table() -> None:
    """Each row of COST.md's 10-million table is the model's line, to the cent."""
    table = COST_MD.split("## 10 million events a month", 1)[1].split("\n## ", 1)[0]
    quoted = [
        row.rsplit("|", 2)[1].strip()
        for row in table.splitlines()
        if re.fullmatch(r"\| [A-Z][^|]*\|.*\| [\d.]+ \|", row)
    ]
    usd = [line.usd for line in monthly_cost(TEN_MILLION).lines]
    usd[5:7] = [usd[5] + usd[6]]  # the table shows S3's PUT/LIST and GET lines as one row
    assert quoted == [f"{dollars:.2f}" for dollars in usd]


# The 10-million month as COST.md's table states it: 400,000 requests of 25 events, one
# 10,000-byte record each (billed 10,240), 4.0 GB of JSON lines, 8,640 objects in 30 days.
DOC_TRAFFIC = Traffic(
    requests=400_000,
    records=400_000,
    billed_bytes=400_000 * 10_240,
    raw_bytes=TEN_MILLION * 400,
    objects=8_640,
    days=30,
)


def _cost_md_row(label: str) -> str:
    table = COST_MD.split("## 10 million events a month", 1)[1].split("\n## ", 1)[0]
    [row] = [row for row in table.splitlines() if row.startswith(f"| {label} |")]
    return row


def test_the_month_of_ten_million_events_is_the_traffic_cost_md_prices() -> None:
    assert monthly_traffic(TEN_MILLION, 25, 25, 400) == DOC_TRAFFIC
    assert DOC_TRAFFIC.invocations == 408_670


# COST.md's row, the lines of that row's service function, the quantities the row states.
SERVICE_ROWS = [
    ("API Gateway (REST)", api_gateway_cost(400_000), ["400,000"]),
    ("Lambda requests", lambda_cost(DOC_TRAFFIC)[:1], ["408,670"]),
    ("Lambda compute (arm64)", lambda_cost(DOC_TRAFFIC)[1:], ["10,220"]),
    ("Firehose", firehose_cost(DOC_TRAFFIC), ["3.81"]),
    ("S3 storage", s3_cost(DOC_TRAFFIC)[:1], ["5.0"]),
    ("S3 requests", s3_cost(DOC_TRAFFIC)[1:], ["17,400", "25,920"]),
    ("CloudWatch Logs", cloudwatch_logs_cost(408_670), ["0.23"]),
]


@pytest.mark.parametrize(
    ("row", "lines", "quantities"), SERVICE_ROWS, ids=[row for row, _, _ in SERVICE_ROWS]
)
def test_each_service_function_gives_its_cost_md_row(
    row: str, lines: list[CostLine], quantities: list[str]
) -> None:
    """The service's function, fed the row's inputs, gives the row's quantities (as many
    decimals as the row writes) and its dollars, to the cent."""
    text = _cost_md_row(row)
    for line, quoted in zip(lines, quantities, strict=True):
        decimals = len(quoted.partition(".")[2])
        assert f"{line.quantity:,.{decimals}f}" == quoted, (row, line)
        assert quoted in text, f"COST.md's {row} row does not state {quoted}"
    assert text.rsplit("|", 2)[1].strip() == f"{sum(line.usd for line in lines):.2f}"


def test_lambda_compute_is_ingest_plus_csv_as_cost_md_adds_it() -> None:
    compute = _cost_md_row("Lambda compute (arm64)")
    ingest_only = lambda_cost(replace(DOC_TRAFFIC, objects=0, days=0))[1]
    csv_only = lambda_cost(replace(DOC_TRAFFIC, requests=0))[1]
    assert f"{ingest_only.quantity:,.0f} GB-s" == "5,000 GB-s" and "= 5,000 GB-s" in compute
    assert f"{csv_only.quantity:,.0f} GB-s" == "5,220 GB-s" and "= 5,220 GB-s" in compute


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"events_per_record": 1},
        {"events_per_request": 1},
        {"rejected_share": 0.5},
        {"storage_months": 12},
    ],
)
def test_the_bill_is_the_service_functions_lines_in_order(kwargs: dict[str, Any]) -> None:
    bill = monthly_cost(TEN_MILLION, **kwargs)
    per_record = bill.events_per_record
    traffic = monthly_traffic(TEN_MILLION, bill.events_per_request, per_record, 400)
    months = kwargs.get("storage_months", 1.0)
    services = [
        *api_gateway_cost(traffic.requests),
        *lambda_cost(traffic),
        *firehose_cost(traffic),
        *s3_cost(traffic, storage_months=months),
        *cloudwatch_logs_cost(traffic.invocations),
    ]
    assert bill.lines[: len(services)] == services
    assert all(line.service == "Rejects" for line in bill.lines[len(services) :])


def test_api_gateway_is_two_thirds_of_the_batched_bill() -> None:
    b = monthly_cost(TEN_MILLION)
    assert (b.requests, b.firehose_records) == (400_000, 400_000)
    services = b.by_service()
    assert services["API Gateway"] == pytest.approx(1.40)
    assert max(services, key=lambda s: services[s]) == "API Gateway"
    assert 0.6 < services["API Gateway"] / b.total < 0.75


def test_total_grows_with_volume() -> None:
    volumes = [0, 1, 1_000, 100_000, 1_000_000, TEN_MILLION, 100_000_000, 1_000_000_000]
    bills = [monthly_cost(n) for n in volumes]
    totals = [b.total for b in bills]
    assert totals == sorted(totals) and len(set(totals)) == len(totals), totals
    for service in bills[-1].by_service():
        subtotals = [b.by_service()[service] for b in bills]
        assert subtotals == sorted(subtotals), service


def test_packing_events_into_records_beats_the_5_kb_rounding() -> None:
    """Billed bytes per stored byte: 12.8x for one 400-byte event per record, 1.024x for 25."""
    alone = monthly_cost(TEN_MILLION, events_per_record=1)
    packed = monthly_cost(TEN_MILLION)
    assert alone.firehose_billed_bytes / (TEN_MILLION * 400) == pytest.approx(12.8)
    assert packed.firehose_billed_bytes / (TEN_MILLION * 400) == pytest.approx(1.024)
    # 12 events (4,800 B) still fit one 5 KB increment; the 13th (5,200 B) starts a second.
    twelve = monthly_cost(12_000, events_per_request=12)
    thirteen = monthly_cost(13_000, events_per_request=13)
    assert twelve.firehose_billed_bytes == 1_000 * 5_120
    assert thirteen.firehose_billed_bytes == 1_000 * 10_240


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
def test_invalid_inputs_refused(kwargs: dict[str, Any]) -> None:
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
    assert total_line.split()[-1] == "2.06"


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


@pytest.mark.parametrize(
    ("share", "added", "total", "records"),
    [(0.01, "0.04", "2.09", 100_000), (0.5, "0.16", "2.21", 384_616)],
)
def test_the_rejects_path_costs_what_the_docs_say(
    share: float, added: str, total: str, records: int
) -> None:
    lines = rejects_path_cost(TEN_MILLION, share)
    assert {line.service for line in lines} == {"Rejects"}
    assert f"{sum(line.usd for line in lines):.2f}" == added
    assert f"{monthly_cost(TEN_MILLION, rejected_share=share).total:.2f}" == total
    assert f"{records:,} records" in lines[0].item
    row = next(line for line in COST_MD.splitlines() if line.startswith(f"| {share * 100:g} %"))
    assert row.endswith(f"| **{added}** | {total} |")
    # Its S3 PUTs are the stream's flushes, never one per request.
    assert lines[-1].quantity == 2880


def test_no_rejects_add_nothing_and_bad_shares_are_refused() -> None:
    assert rejects_path_cost(TEN_MILLION, 0) == []
    assert monthly_cost(TEN_MILLION, rejected_share=0).total == monthly_cost(TEN_MILLION).total
    with pytest.raises(ValueError, match="between 0 and 1"):
        rejects_path_cost(TEN_MILLION, 1.5)
    result = CliRunner().invoke(cost, ["--rejected-share", "0.5"])
    assert result.exit_code == 0 and "Rejects" in result.stdout
    assert result.stdout.strip().splitlines()[-1].split()[-1] == "2.21"


PROD_DAILY: dict[str, Any] = {"athena_threshold_bytes": 256 * 1024 * 1024, "parquet_daily": True}


@pytest.mark.parametrize("events", [TEN_MILLION, 1_000_000_000, 10_000_000_000])
def test_the_daily_build_on_athena_costs_what_the_docs_say(events: int) -> None:
    """COST.md's row for the volume: Athena's scans, the Parquet storage, the total."""
    with_athena = monthly_cost(events, **PROD_DAILY)
    athena = [line for line in with_athena.lines if line.service == "Athena"]
    added = with_athena.total - monthly_cost(events).total
    assert added == pytest.approx(sum(line.usd for line in athena))
    row = next(line for line in COST_MD.splitlines() if line.startswith(f"| {events:,} |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == ("Athena" if events > TEN_MILLION else "Lambda")
    assert cells[3] == f"{athena[0].quantity * 1024:,.1f} GB"
    assert cells[4] == f"{athena[0].usd:,.2f}"
    assert cells[5] == f"{athena[1].quantity:,.1f} GB"
    assert cells[6] == f"{athena[1].usd:,.2f}"
    assert cells[7] == f"**{added:,.2f}**"
    assert cells[8] == f"{with_athena.total:,.2f}"


def test_athena_scans_at_least_10_mb_a_query_and_nothing_without_it() -> None:
    from deploy.cost_athena import ATHENA_MIN_BYTES_PER_QUERY, daily_build_cost

    assert daily_build_cost(TEN_MILLION, 400, 0.15, 0.6, None, False) == []
    tiny = daily_build_cost(1000, 400, 0.15, 0.6, 0, True)
    assert tiny[0].quantity == pytest.approx(30 * 4 * ATHENA_MIN_BYTES_PER_QUERY / 1024**4)
    with pytest.raises(ValueError, match="threshold"):
        daily_build_cost(TEN_MILLION, 400, 0.15, 0.6, -1, False)
    result = CliRunner().invoke(
        cost, ["--events-per-month", "1000000000", "--athena-threshold-bytes", "0", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["by_service"]["Athena"] > 0
