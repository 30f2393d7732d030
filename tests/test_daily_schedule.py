"""The schedule's choices per day: the engine by the day's gzip bytes, a Lambda build that
failed or never finished retried on Athena, the bounded catch-up, the Parquet copy;
and the pieces of the Athena build on their own (tags, result keys, the big copy)."""

from __future__ import annotations

import datetime as dt
import errno
import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chalicelib import daily_schedule
from chalicelib.athena.publish import copy_whole
from chalicelib.athena.state import AthenaDaily, parse_tag, query_id_of, query_tag
from chalicelib.config import DailyBuild, Settings
from chalicelib.daily_schedule import DailySchedule, measure_day
from chalicelib.storage.s3 import S3Store
from tests.athena_standin import AthenaStandIn
from tests.test_handlers import stored_line

FIRED = "2026-11-28T00:30:00Z"


def put_day(s3: Any, bucket: str, day: str, events: int = 3) -> int:
    """One raw object of ``events`` records on ``day`` (YYYY/MM/DD); its gzip size."""
    body = gzip.compress(b"".join(stored_line(eventId=f"e{n}") for n in range(events)))
    s3.put_object(Bucket=bucket, Key=f"raw/{day}/10/object.gz", Body=body)
    return len(body)


def schedule(
    s3: Any, bucket: str, standin: AthenaStandIn, **daily: Any
) -> tuple[DailySchedule, list[str]]:
    """A schedule over the moto bucket; the list records each Athena client made."""
    settings = replace(Settings(), bucket=bucket, daily=DailyBuild(**daily))
    made: list[str] = []

    def athena() -> Any:
        made.append("athena")
        return standin

    return DailySchedule(S3Store(s3, bucket), s3, settings, athena), made


def csv_days(s3: Any, bucket: str) -> list[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix="csv/").get("Contents", [])
    return sorted(item["Key"] for item in found)


def test_the_day_is_measured_in_one_listing(s3: Any, bucket: str) -> None:
    size = put_day(s3, bucket, "2026/11/27")
    s3.put_object(Bucket=bucket, Key="raw/2026/11/27/11/", Body=b"")  # a console's folder
    assert measure_day(s3, bucket, "raw/2026/11/27/") == daily_schedule.DaySize(1, size)


def test_below_the_threshold_the_lambda_builds_above_it_athena(
    s3: Any, bucket: str, standin: AthenaStandIn
) -> None:
    size = put_day(s3, bucket, "2026/11/27")
    run, _ = schedule(s3, bucket, standin, athena_threshold_bytes=size + 1)
    [yesterday, *_] = run.run(FIRED)
    assert yesterday["csv"] == "lambda: built" and not standin.started
    assert csv_days(s3, bucket) == ["csv/2026-11-27_combined.csv"]

    put_day(s3, bucket, "2026/11/28")
    run, _ = schedule(s3, bucket, standin, athena_threshold_bytes=size)
    [yesterday, *_] = run.run("2026-11-29T00:30:00Z")
    assert yesterday["csv"].startswith("athena: started") and len(standin.started) == 1


def test_without_a_threshold_nothing_calls_athena(s3: Any, bucket: str, standin: Any) -> None:
    put_day(s3, bucket, "2026/11/27", events=50)
    run, made = schedule(s3, bucket, standin)
    run.run(FIRED)
    assert made == [] and csv_days(s3, bucket) == ["csv/2026-11-27_combined.csv"]


def test_a_lambda_build_that_fails_goes_to_athena_in_the_same_run(
    s3: Any, bucket: str, standin: AthenaStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_day(s3, bucket, "2026/11/27")

    def out_of_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(daily_schedule, "build_daily_csv", out_of_disk)
    run, _ = schedule(s3, bucket, standin, athena_threshold_bytes=10**9)
    [yesterday, *_] = run.run(FIRED)
    assert "the Lambda build failed" in yesterday["csv"] and "No space left" in yesterday["csv"]
    assert len(standin.started) == 1
    # Without Athena the invocation fails (and Lambda retries it) as before.
    run, _ = schedule(s3, bucket, standin)
    with pytest.raises(OSError, match="No space left"):
        run.run("2026-11-29T00:30:00Z")


def test_a_lambda_build_that_never_finished_is_retried_on_athena(
    s3: Any, bucket: str, standin: AthenaStandIn
) -> None:
    put_day(s3, bucket, "2026/11/27")
    run, _ = schedule(s3, bucket, standin, athena_threshold_bytes=10**9)
    # What a build killed at its timeout leaves: its marker, no combined file.
    run.job.write_state(dt.date(2026, 11, 27), "lambda.json", {"attempt": "earlier"})
    [yesterday, *_] = run.run(FIRED)
    assert yesterday["csv"] == "athena: started (the Lambda build did not finish)"


def test_missing_days_are_caught_up_a_bounded_number_of_days_back(
    s3: Any, bucket: str, standin: AthenaStandIn
) -> None:
    put_day(s3, bucket, "2026/11/25")  # 2 days before yesterday: caught up
    put_day(s3, bucket, "2026/11/22")  # 5 days before: out of reach
    run, _ = schedule(s3, bucket, standin, catchup_days=3)
    outcomes = run.run(FIRED)
    assert [o["day"] for o in outcomes] == ["2026-11-27", "2026-11-26", "2026-11-25", "2026-11-24"]
    assert csv_days(s3, bucket) == [
        "csv/2026-11-25_combined.csv",
        "csv/2026-11-27_combined.csv",  # yesterday always (header only without data)
    ]
    assert run.run(FIRED)[2]["csv"] == "done"


def test_every_day_gets_its_parquet_copy_once(
    s3: Any, bucket: str, standin: AthenaStandIn, tmp_path: Path
) -> None:
    put_day(s3, bucket, "2026/11/27")
    run, _ = schedule(s3, bucket, standin, athena_threshold_bytes=10**9, parquet=True)
    [yesterday, *_] = run.run(FIRED)
    assert yesterday == {
        "event": "schedule",
        "day": "2026-11-27",
        "csv": "lambda: built",
        "parquet": "started",
    }
    files = s3.list_objects_v2(Bucket=bucket, Prefix="parquet/dt=2026-11-27/")["Contents"]
    assert len(files) == 1
    run, _ = schedule(s3, bucket, standin, athena_threshold_bytes=10**9, parquet=True)
    assert run.run(FIRED)[0]["parquet"] == "done" and len(standin.started) == 1


def test_a_failed_parquet_copy_is_emptied_and_started_again(
    s3: Any, bucket: str, standin: AthenaStandIn
) -> None:
    put_day(s3, bucket, "2026/11/27")
    standin.fail = lambda sql: "HIVE_TOO_MANY_OPEN_PARTITIONS" if "UNLOAD" in sql else None
    run, _ = schedule(s3, bucket, standin, parquet=True)
    run.run(FIRED)
    s3.put_object(Bucket=bucket, Key="parquet/dt=2026-11-27/partial", Body=b"half")
    standin.fail = lambda sql: None
    run, _ = schedule(s3, bucket, standin, parquet=True)
    assert run.run(FIRED)[0]["parquet"] == "started"
    keys = [i["Key"] for i in s3.list_objects_v2(Bucket=bucket, Prefix="parquet/")["Contents"]]
    assert len(keys) == 1 and "partial" not in keys[0]


# --- the pieces --------------------------------------------------------------------------


def test_a_query_tag_names_step_day_and_build() -> None:
    sql = "SELECT 1\n" + query_tag("csv", dt.date(2026, 11, 27), "q-1")
    assert parse_tag(sql) == {"step": "csv", "day": "2026-11-27", "build": "q-1"}
    for foreign in (
        "SELECT 1",
        "-- owned-analytics daily build {",
        'SELECT 1\n-- x {"step":"csv"}',
    ):
        assert parse_tag(foreign) is None
    bad_step = "-- owned-analytics daily build " + json.dumps({"step": "x", "day": "2026-11-27"})
    assert parse_tag(bad_step) is None


def test_only_result_objects_name_a_query() -> None:
    prefix = "athena-results/"
    assert query_id_of(f"{prefix}abc-1.csv", prefix) == "abc-1"
    assert query_id_of(f"{prefix}abc-1-manifest.csv", prefix) == "abc-1"
    for other in (f"{prefix}abc.csv.metadata", f"{prefix}daily-build/x.csv", "raw/abc.csv"):
        assert query_id_of(other, prefix) is None


def test_someone_elses_query_landing_is_ignored(
    s3: Any, bucket: str, standin: AthenaStandIn
) -> None:
    from chalicelib.athena.daily import on_result_object

    run, _ = schedule(s3, bucket, standin)
    started = standin.start_query_execution(
        QueryString="SELECT 1 AS x", WorkGroup="owned-analytics"
    )
    job = AthenaDaily(standin, s3, run.settings)  # type: ignore[arg-type]
    key = f"athena-results/{started['QueryExecutionId']}.csv"
    assert on_result_object(job, key) == "ignored: not a daily build query"
    assert not csv_days(s3, bucket)


def test_past_the_single_copy_limit_the_result_is_copied_in_parts(s3: Any, bucket: str) -> None:
    body = bytes(range(256)) * (11 * 1024 * 1024 // 256 + 7)  # 11 MiB and a bit
    s3.put_object(Bucket=bucket, Key="athena-results/q.csv", Body=body)
    size = copy_whole(
        s3,
        f"s3://{bucket}/athena-results/q.csv",
        bucket,
        "csv/2026-11-27_combined.csv",
        max_single=1024,
        min_part=5 * 1024 * 1024,
    )
    assert size == len(body)
    copied = s3.get_object(Bucket=bucket, Key="csv/2026-11-27_combined.csv")
    assert copied["Body"].read() == body
    assert copied["ETag"].strip('"').endswith("-3")  # a multipart object of 3 parts


def test_the_parquet_unload_fits_athenas_query_limit_and_parses_as_trino() -> None:
    import sqlglot

    from chalicelib.athena import MAX_QUERY_BYTES
    from chalicelib.athena.parquet import build_parquet_select, build_parquet_unload

    location = "s3://b/parquet/dt=2026-11-27/"
    sql = build_parquet_unload("owned_analytics", "events", dt.date(2026, 11, 27), location)
    assert len(sql.encode()) < MAX_QUERY_BYTES
    assert sql.startswith("UNLOAD (\n") and f"TO '{location}'" in sql
    assert "format = 'PARQUET', compression = 'ZSTD'" in sql
    sqlglot.parse_one(build_parquet_select("owned_analytics", "events", "2026-11-27"), read="trino")
    with pytest.raises(ValueError, match="s3://"):
        build_parquet_unload("owned_analytics", "events", dt.date(2026, 11, 27), "parquet/")


def test_importing_the_app_does_not_load_the_athena_build() -> None:
    """The API's cold start does not pay for the daily build's SQL."""
    from tests.conftest import python_output

    code = (
        "import sys, app; "
        "print(sorted(m for m in sys.modules if m.startswith(('chalicelib.athena', "
        "'chalicelib.daily_schedule'))))"
    )
    assert python_output(code) == "[]"
