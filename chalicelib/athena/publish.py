"""Publishing a day the Athena build made: the bad-lines report as the Lambda writes it,
then the result copied whole to ``csv/YYYY-MM-DD_combined.csv``, then the hook."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, BinaryIO

from chalicelib.athena.delivery import build_delivery_query, delivery_log_record
from chalicelib.athena.state import (
    ENDED_BADLY,
    MAX_COPY_BYTES,
    MIN_COPY_PART_BYTES,
    AthenaDaily,
    log_failed,
    result_location,
    scanned_bytes,
    split_s3_uri,
    state_of,
)
from chalicelib.jobs import convert_sources, sources_for
from chalicelib.layout import daily_errors_key, daily_key_for
from chalicelib.storage.s3 import S3Store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def try_publish(job: AthenaDaily, day: date, build: str) -> str:
    """Publish when the build's csv and bad-lines queries have both succeeded."""
    state = job.read_state(day, "csv.json") or {}
    if state.get("columns") != build:
        return "ignored: not the day's current build"
    if not state.get("csv") or not state.get("bad_lines"):
        return "waiting: the build's queries are not recorded yet"
    csv_execution = job.execution(str(state["csv"]))
    bad_execution = job.execution(str(state["bad_lines"]))
    states = {state_of(e)[0] for e in (csv_execution, bad_execution)}
    if states & ENDED_BADLY:
        # No result of a failed query lands: its sibling's event is the first to see it.
        for step, execution in (("csv", csv_execution), ("bad-lines", bad_execution)):
            if state_of(execution)[0] in ENDED_BADLY:
                log_failed(job, day, step, execution)
        return "not published: a query of the build ended badly; the next run starts it again"
    if states != {"SUCCEEDED"}:
        return f"waiting: {sorted(states)}"
    return publish(job, day, csv_execution, bad_execution)


# --- publishing -------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedDay:
    """What the Athena build published for a day: the argument of the hook."""

    day: date
    output: str
    bytes: int
    bad_lines: int
    errors_output: str
    csv_query: str
    scanned_bytes: int


def publish(
    job: AthenaDaily, day: date, csv_execution: dict[str, Any], bad_execution: dict[str, Any]
) -> str:
    csv_id = str(csv_execution["QueryExecutionId"])
    marker = job.state_key(day, f"published-{csv_id}.json")
    target = daily_key_for(day, job.settings)
    # A duplicate event publishes nothing twice; a file deleted since is published again.
    if job.exists(marker) and job.exists(target):
        return "already published"
    bad_objects = [row[0] for row in job.result_rows(bad_execution) if row]
    bad_lines, errors_output = write_bad_lines_report(
        job, bad_objects, daily_errors_key(day, job.settings)
    )
    size = copy_whole(job.s3, result_location(csv_execution), job.bucket, target)
    published = PublishedDay(
        day=day,
        output=f"s3://{job.bucket}/{target}",
        bytes=size,
        bad_lines=bad_lines,
        errors_output=errors_output,
        csv_query=csv_id,
        scanned_bytes=scanned_bytes(csv_execution) + scanned_bytes(bad_execution),
    )
    job.write_state(day, f"published-{csv_id}.json", {"output": published.output})
    on_daily_published(job, published)
    return "published"


def on_daily_published(job: AthenaDaily, published: PublishedDay) -> None:
    """Called once each time the Athena build publishes a day's combined CSV: the place
    for whatever must follow a published day (a delivery log line, a notification)."""
    job.log_json(
        logging.INFO,
        {
            "event": "daily",
            "engine": "athena",
            "day": published.day.isoformat(),
            "output": published.output,
            "bytes": published.bytes,
            "badLines": published.bad_lines,
            "errorsOutput": published.errors_output,
            "query": published.csv_query,
            "scannedBytes": published.scanned_bytes,
        },
    )
    start_delivery_query(job, published)


def start_delivery_query(job: AthenaDaily, published: PublishedDay) -> str:
    """The day's delivery counts as one more query: its result's handler writes the same
    log line the Lambda writes for the days it builds (``chalicelib.delivery.measure``)."""
    daily = job.settings.daily
    sql = build_delivery_query(daily.database, daily.table, published.day)
    build = published.csv_query
    return job.start(sql, "delivery", published.day, build=build, parent=build)


def log_delivery(job: AthenaDaily, day: date, execution: dict[str, Any]) -> str:
    """The delivery query's one row → the daily ``{"event": "delivery", …}`` log line."""
    rows = job.result_rows(execution)
    if len(rows) != 1:
        return f"delivery: {len(rows)} rows, expected one"
    job.log_json(logging.INFO, delivery_log_record(day, rows[0]))
    return "delivery logged"


def write_bad_lines_report(
    job: AthenaDaily, objects: list[str], errors_key: str
) -> tuple[int, str]:
    """The Lambda's report of the day's bad lines (each with its object, line number,
    reason and content), from the converter's own reading of just the objects Athena
    found them in; nothing is written when there are none, as in the Lambda."""
    if not objects:
        return 0, ""
    store = S3Store(job.s3, job.bucket)
    keys = sorted(split_s3_uri(uri)[1] for uri in objects)
    report = convert_sources(
        sources_for(store, keys),
        output=_discard,
        output_name="",
        errors_store=store,
        errors_key=errors_key,
        neutralize_formulas=job.settings.neutralize_formulas,
        max_columns=job.settings.max_csv_columns,
        compress_spool=True,
    )
    return report.bad_lines, report.errors_output


class _Discard(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return len(data)


@contextmanager
def _discard() -> Iterator[BinaryIO]:
    """The CSV of the objects read only for their bad lines goes nowhere."""
    yield io.BufferedWriter(_Discard())


def copy_whole(
    s3: S3Client,
    source_uri: str,
    bucket: str,
    key: str,
    *,
    max_single: int = MAX_COPY_BYTES,
    min_part: int = MIN_COPY_PART_BYTES,
) -> int:
    """Copy an object in one piece: a single copy up to 5 GB, a multipart copy past it
    (visible only once complete). Says how many bytes."""
    source_bucket, source_key = split_s3_uri(source_uri)
    size = s3.head_object(Bucket=source_bucket, Key=source_key)["ContentLength"]
    source = {"Bucket": source_bucket, "Key": source_key}
    extra = {"ContentType": "text/csv; charset=utf-8", "MetadataDirective": "REPLACE"}
    if size <= max_single:
        s3.copy_object(Bucket=bucket, Key=key, CopySource=source, **extra)  # type: ignore[arg-type]
        return size
    part_size = max(min_part, -(-size // 10_000), 1)
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=extra["ContentType"])
    upload_id = upload["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, size, part_size), start=1):
            end = min(start + part_size, size) - 1
            copied = s3.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource=source,  # type: ignore[arg-type]
                CopySourceRange=f"bytes={start}-{end}",
            )
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return size
