"""The daily build on Athena, event-driven: no Lambda waits for a query.

1. The schedule (``chalicelib.daily_schedule``) starts the day's **columns** query
   (:func:`start_csv_build`) and, for the Parquet copy, the **parquet** ``UNLOAD``
   (:func:`start_parquet`) in the stack's workgroup.
2. When a query's result object lands under the results prefix, S3 invokes
   :func:`on_result_object`. For the columns query it starts the **csv** query with
   those columns and the **bad-lines** query.
3. When both of those have landed, :func:`publish` writes the bad-lines report as the
   Lambda writes it (``errors/daily/YYYY-MM-DD.jsonl``, the converter's own reading of
   just the objects Athena named) and then copies the result whole to
   ``csv/YYYY-MM-DD_combined.csv`` (one atomic copy; a multipart copy past 5 GB), and
   calls :func:`on_daily_published`.

Each query carries a tag in its last line (:func:`query_tag`) naming its step, its day
and its build, so a handler knows what landed from Athena alone, and ignores queries
it did not start. What the schedule needs to resume a day (which queries belong to
the day's current build) is kept as small JSON objects under
``<results prefix>daily-build/YYYY-MM-DD/``. Starting a query is idempotent (its
``ClientRequestToken`` derives from its step, day and parent), publishing too (a
``published-<query id>.json`` marker), so reruns and duplicate S3 events start or
publish nothing twice. A query that FAILED or was CANCELLED is logged with Athena's
reason; the next schedule run starts the day again.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING, Any

from chalicelib.athena.parquet import build_parquet_unload, parquet_location
from chalicelib.athena.publish import PublishedDay, on_daily_published, publish, try_publish
from chalicelib.athena.queries import (
    build_bad_lines_query,
    build_columns_query,
    daily_csv_query,
    parse_column_counts,
)
from chalicelib.athena.state import (
    ENDED_BADLY,
    RUNNING_STATES,
    AthenaDaily,
    StepNotReady,
    key_exists,
    log_failed,
    parse_tag,
    query_id_of,
    scanned_bytes,
    split_s3_uri,
    state_of,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

__all__ = [
    "ENDED_BADLY",
    "RUNNING_STATES",
    "AthenaDaily",
    "PublishedDay",
    "StepNotReady",
    "advance",
    "key_exists",
    "log_failed",
    "on_daily_published",
    "on_result_object",
    "publish",
    "start_csv_build",
    "start_csv_query",
    "start_parquet",
    "state_of",
    "try_publish",
]


# --- starting -------------------------------------------------------------------------


def start_csv_build(job: AthenaDaily, day: date, attempt: str, reason: str) -> str:
    """Start the day's columns query (the build's first step) and record it."""
    daily = job.settings.daily
    sql = build_columns_query(daily.database, daily.table, day)
    query_id = job.start(sql, "columns", day, build=f"columns:{attempt}", parent=attempt)
    job.write_state(day, "csv.json", {"columns": query_id, "attempt": attempt, "reason": reason})
    job.log_json(
        logging.INFO,
        {
            "event": "daily",
            "engine": "athena",
            "day": day.isoformat(),
            "step": "columns",
            "query": query_id,
            "reason": reason,
        },
    )
    return query_id


def start_parquet(job: AthenaDaily, day: date, attempt: str) -> str:
    """Empty ``parquet/dt=YYYY-MM-DD/`` (an UNLOAD refuses to write over files; what is
    there is a failed or outdated copy) and start the day's UNLOAD into it."""
    daily = job.settings.daily
    location = parquet_location(job.bucket, daily.parquet_prefix, day)
    _delete_under(job.s3, job.bucket, split_s3_uri(location)[1])
    sql = build_parquet_unload(daily.database, daily.table, day, location)
    query_id = job.start(sql, "parquet", day, build=f"parquet:{attempt}", parent=attempt)
    job.write_state(day, "parquet.json", {"parquet": query_id, "attempt": attempt})
    job.log_json(
        logging.INFO,
        {"event": "parquet", "day": day.isoformat(), "step": "unload", "query": query_id},
    )
    return query_id


def _delete_under(s3: S3Client, bucket: str, prefix: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys: list[ObjectIdentifierTypeDef] = [
            {"Key": item["Key"]} for item in page.get("Contents", [])
        ]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def start_csv_query(job: AthenaDaily, day: date, columns_execution: dict[str, Any]) -> None:
    """The columns query's result → the CSV query with those columns, and the bad-lines
    query; both recorded as the day's current build."""
    daily = job.settings.daily
    columns_id = str(columns_execution["QueryExecutionId"])
    state = job.read_state(day, "csv.json") or {}
    if state.get("columns") not in (None, columns_id):
        job.log_json(logging.INFO, {"event": "daily", "day": day.isoformat(), "stale": columns_id})
        return
    counts = parse_column_counts(job.result_rows(columns_execution))
    query = daily_csv_query(
        daily.database, daily.table, day, counts, max_columns=job.settings.max_csv_columns
    )
    csv_id = job.start(query.sql, "csv", day, build=columns_id, parent=columns_id)
    bad_sql = build_bad_lines_query(daily.database, daily.table, day)
    bad_id = job.start(bad_sql, "bad-lines", day, build=columns_id, parent=columns_id)
    job.write_state(
        day,
        "csv.json",
        {
            **state,
            "columns": columns_id,
            "csv": csv_id,
            "bad_lines": bad_id,
            "overflowed": len(query.overflowed),
        },
    )
    job.log_json(
        logging.INFO,
        {
            "event": "daily",
            "engine": "athena",
            "day": day.isoformat(),
            "step": "csv",
            "query": csv_id,
            "badLinesQuery": bad_id,
            "columns": len(query.columns),
        },
    )


# --- what landed ------------------------------------------------------------------------


def on_result_object(job: AthenaDaily, key: str) -> str:
    """The S3 event handler's job for one object under the results prefix; says what it
    did (for the log and the tests)."""
    query_id = query_id_of(key, job.settings.daily.results_prefix)
    if query_id is None:
        return "ignored: not a query result"
    execution = job.execution(query_id)
    tag = parse_tag(str(execution.get("Query", "")))
    if tag is None:
        return "ignored: not a daily build query"
    return advance(job, execution, tag)


def advance(job: AthenaDaily, execution: dict[str, Any], tag: dict[str, str]) -> str:
    """Take one finished query of the build to the next step."""
    day = date.fromisoformat(tag["day"])
    state, reason = state_of(execution)
    if state in RUNNING_STATES:
        raise StepNotReady(f"query {execution['QueryExecutionId']} is still {state}")
    if state in ENDED_BADLY:
        log_failed(job, day, tag["step"], execution)
        return f"{tag['step']} {state}: {reason}"
    if tag["step"] == "columns":
        start_csv_query(job, day, execution)
        return "started the csv query"
    if tag["step"] == "parquet":
        job.log_json(
            logging.INFO,
            {
                "event": "parquet",
                "day": day.isoformat(),
                "step": "done",
                "query": execution["QueryExecutionId"],
                "scannedBytes": scanned_bytes(execution),
            },
        )
        return "parquet written"
    return try_publish(job, day, tag["build"])
