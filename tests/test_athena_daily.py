"""The daily build on Athena, end to end through the handlers: the schedule, then each
result object's S3 event (generated as Chalice does), on moto S3 and the Athena
stand-in (moto for the API, DuckDB for the SQL), against the Lambda's build of the
same generated day."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import duckdb
import pytest
from chalice.test import Client

import app as app_module
from chalicelib.athena import publish as athena_publish
from chalicelib.athena.parquet import TYPED_COLUMNS
from chalicelib.config import DailyBuild
from chalicelib.csv.columns import ATTRIBUTE_PREFIX, OVERFLOW_COLUMN, header_cell, neutralize
from tests.athena_standin import AthenaStandIn
from tests.test_athena_queries import compare, generated_day

DAY = "2024-02-03"
RESULTS = "athena-results/"
CSV_KEY = f"csv/{DAY}_combined.csv"
ERRORS_KEY = f"errors/daily/{DAY}.jsonl"


@pytest.fixture
def client(
    s3: Any, bucket: str, standin: AthenaStandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Client]:
    monkeypatch.setitem(app_module._clients, "s3", s3)
    monkeypatch.setitem(app_module._clients, "athena", standin)
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


def use_daily(monkeypatch: pytest.MonkeyPatch, **settings: Any) -> None:
    daily = DailyBuild(**settings)
    monkeypatch.setattr(app_module, "SETTINGS", replace(app_module.SETTINGS, daily=daily))


def tick(client: Client, fired: str) -> None:
    event = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    event["time"] = fired
    client.lambda_.invoke("build_daily_csv", event)


def deliver(client: Client, standin: AthenaStandIn, *, twice: bool = False) -> list[str]:
    """Every object the stand-in wrote that the results notification matches (prefix
    and suffix, as S3 filters), as an S3 event to the step handler, until none is left."""
    delivered = []
    while standin.landed:
        key = standin.landed.pop(0)
        if not (key.startswith(RESULTS) and key.endswith(".csv")):
            continue
        event = client.events.generate_s3_event(bucket=standin.bucket, key=quote_plus(key, "/"))
        for _ in range(2 if twice else 1):
            client.lambda_.invoke("athena_daily_step", event)
        delivered.append(key)
    return delivered


def upload_generated_day(s3: Any, bucket: str, root: Path) -> None:
    generated_day(root)
    for path in sorted((root / "raw").rglob("*.gz")):
        s3.upload_file(str(path), bucket, path.relative_to(root).as_posix())


def read(s3: Any, bucket: str, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def parse_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    return header, rows


def keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [item["Key"] for item in found]


def delivery_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    return [line for line in logged if line.get("event") == "delivery"]


@pytest.fixture
def lambda_build(
    client: Client,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> tuple[bytes, bytes, dict[str, Any]]:
    """The generated day in the bucket, and the Lambda's build of it (threshold unset:
    no Athena) with its delivery log line, taken away again so that the Athena build has
    to make it."""
    upload_generated_day(s3, bucket, tmp_path / "day")
    use_daily(monkeypatch)
    with caplog.at_level(logging.INFO):
        tick(client, "2024-02-04T00:30:00Z")
    [delivery] = delivery_lines(caplog)
    caplog.clear()
    built = read(s3, bucket, CSV_KEY), read(s3, bucket, ERRORS_KEY), delivery
    s3.delete_object(Bucket=bucket, Key=CSV_KEY)
    s3.delete_object(Bucket=bucket, Key=ERRORS_KEY)
    return built


def test_threshold_zero_builds_the_lambdas_csv_on_athena_and_a_parquet_copy(
    client: Client,
    s3: Any,
    bucket: str,
    standin: AthenaStandIn,
    lambda_build: tuple[bytes, bytes, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    published: list[athena_publish.PublishedDay] = []
    hook = athena_publish.on_daily_published

    def spy(job: Any, day: athena_publish.PublishedDay) -> None:
        published.append(day)
        hook(job, day)

    monkeypatch.setattr(athena_publish, "on_daily_published", spy)
    use_daily(monkeypatch, athena_threshold_bytes=0, parquet=True)
    tick(client, "2024-02-04T00:30:00Z")
    # The schedule only started queries: the columns query and the Parquet UNLOAD.
    assert len(standin.started) == 2 and not keys_under(s3, bucket, CSV_KEY)
    with caplog.at_level(logging.INFO):
        delivered = deliver(client, standin)
    # Then the csv and bad-lines queries, and once published the delivery query.
    assert len(standin.started) == 5
    assert len(delivered) == 5  # 4 results and the UNLOAD's manifest
    lambda_csv, lambda_errors, lambda_delivery = lambda_build
    # The day's delivery line, as the Lambda logs it for the days it builds.
    assert delivery_lines(caplog) == [lambda_delivery]

    header, rows = parse_csv(read(s3, bucket, CSV_KEY))
    lambda_header, lambda_rows = parse_csv(lambda_csv)
    assert header == lambda_header
    result = compare(header, lambda_rows, [list(r) for r in rows])
    assert not result.mismatches, "\n".join(result.mismatches[:20])
    assert result.rows == len(lambda_rows) == 103
    assert set(result.skipped) <= {"Row order", "Numbers inside lists"}
    # The bad-lines report is the Lambda's, byte for byte.
    assert read(s3, bucket, ERRORS_KEY) == lambda_errors
    [day] = published
    assert day.output == f"s3://{bucket}/{CSV_KEY}" and day.bad_lines == 3
    assert day.scanned_bytes > 0

    parquet_keys = keys_under(s3, bucket, f"parquet/dt={DAY}/")
    assert len(parquet_keys) == 1
    local = tmp_path / "copy.parquet"
    s3.download_file(bucket, parquet_keys[0], str(local))
    assert_parquet_holds_the_csv_rows(local, header, rows)


def as_csv_cell(text: str, cell: str) -> str:
    """Parquet keeps text as sent; the CSV puts a ' before text a spreadsheet would run
    (strings only: a negative number stays as it is)."""
    return cell if neutralize(text) == cell else text


def assert_parquet_holds_the_csv_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    con = duckdb.connect()
    cursor = con.execute(f"SELECT * FROM read_parquet('{path}')")
    names = [c[0] for c in cursor.description]
    assert names == [name for name, _ in TYPED_COLUMNS] + ["attributes", "context"]
    copy = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    con.close()
    assert len(copy) == len(rows)
    typed = dict(TYPED_COLUMNS)
    for row, stored in zip(rows, copy, strict=True):
        cells = {c: v for c, v in zip(header, row, strict=True) if v and c != OVERFLOW_COLUMN}
        # The CSV's header escapes what a header cell cannot hold (a NUL in a key).
        context = {header_cell(k, True): v for k, v in stored["context"].items() if v}
        attributes = {
            header_cell(ATTRIBUTE_PREFIX + k, True): v for k, v in stored["attributes"].items() if v
        }
        if OVERFLOW_COLUMN in context:  # a record's own "_overflow" field: in that column
            assert context.pop(OVERFLOW_COLUMN) in row[header.index(OVERFLOW_COLUMN)]
        in_context = {}
        for column, cell in cells.items():
            if column.startswith(ATTRIBUTE_PREFIX):
                text = attributes.pop(column)
                assert as_csv_cell(text, cell) == cell, column
            elif column not in typed or stored[column] is None:
                in_context[column] = cell  # custom context, or a value off its type
            else:
                assert as_cell(stored[column], typed[column], cell) == cell, column
        assert not attributes, "no attribute the CSV row lacks"
        assert {k: as_csv_cell(v, in_context.get(k, v)) for k, v in context.items()} == in_context
        for column in typed:
            if column not in cells:  # an empty cell: no value, or empty text (botReason "")
                assert stored[column] in (None, ""), column


def as_cell(value: Any, kind: str, cell: str) -> str:
    """A typed Parquet value as the CSV writes the same field."""
    if kind == "double":
        assert float(cell) == value
        return cell
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        text = value.replace(tzinfo=dt.UTC).isoformat(timespec="milliseconds")
        return str(text).replace("+00:00", "Z")
    return as_csv_cell(str(value), cell)


def test_duplicate_events_and_reruns_publish_once(
    client: Client,
    s3: Any,
    bucket: str,
    standin: AthenaStandIn,
    lambda_build: tuple[bytes, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(
        athena_publish, "on_daily_published", lambda job, day: calls.append(day.output)
    )
    use_daily(monkeypatch, athena_threshold_bytes=0)
    tick(client, "2024-02-04T00:30:00Z")
    assert len(standin.started) == 1
    # Lambda's retry of the same event: the columns query has finished, its S3 event
    # has not come yet, so the rerun takes that step (the csv and bad-lines queries).
    tick(client, "2024-02-04T00:30:00Z")
    assert len(standin.started) == 3
    deliver(client, standin, twice=True)
    assert len(standin.started) == 3  # the same step twice starts nothing twice
    assert len(calls) == 1
    first = read(s3, bucket, CSV_KEY)
    tick(client, "2024-02-05T00:30:00Z")  # the next day: 2024-02-03 is done
    assert read(s3, bucket, CSV_KEY) == first and len(calls) == 1


def test_a_failed_query_is_logged_with_its_reason_and_retried_by_the_next_run(
    client: Client,
    s3: Any,
    bucket: str,
    standin: AthenaStandIn,
    lambda_build: tuple[bytes, bytes],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reason = "HIVE_CURSOR_ERROR: Unexpected end of input stream"
    standin.fail = lambda sql: reason if sql.startswith("-- Daily CSV") else None
    use_daily(monkeypatch, athena_threshold_bytes=0)
    tick(client, "2024-02-04T00:30:00Z")
    with caplog.at_level(logging.INFO):
        deliver(client, standin)  # the bad-lines result lands: its sibling failed
    assert not keys_under(s3, bucket, CSV_KEY)  # nothing half-published
    assert failures(caplog) == [{"day": DAY, "step": "csv", "reason": reason}]
    caplog.clear()
    standin.fail = lambda sql: None
    with caplog.at_level(logging.INFO):
        tick(client, "2024-02-05T00:30:00Z")  # logs it again, and starts the day again
    assert failures(caplog) == [{"day": DAY, "step": "csv", "reason": reason}]
    deliver(client, standin)
    assert parse_csv(read(s3, bucket, CSV_KEY))[0] == parse_csv(lambda_build[0])[0]


def failures(caplog: pytest.LogCaptureFixture) -> list[dict[str, str]]:
    """The FAILED queries the log names: day, step and Athena's reason."""
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    return [
        {"day": line["day"], "step": line["step"], "reason": line["reason"]}
        for line in logged
        if line.get("state") == "FAILED"
    ]


def test_a_query_still_running_is_left_to_finish(
    client: Client,
    s3: Any,
    bucket: str,
    standin: AthenaStandIn,
    lambda_build: tuple[bytes, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin.hold = lambda sql: True
    use_daily(monkeypatch, athena_threshold_bytes=0)
    tick(client, "2024-02-04T00:30:00Z")
    tick(client, "2024-02-05T00:30:00Z")  # the day's columns query is still running
    assert len(standin.started) == 2  # 2024-02-03 once, 2024-02-04 (the stray object) once
    standin.hold = lambda sql: False
    standin.finish_held()
    deliver(client, standin)
    assert keys_under(s3, bucket, CSV_KEY) == [CSV_KEY]
