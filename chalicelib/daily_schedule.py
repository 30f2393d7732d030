"""The 00:30 UTC schedule: which engine builds each day, and the days still missing.

For yesterday and up to ``DAILY_CATCHUP_DAYS`` days before it (those holding raw
objects), a day without ``csv/YYYY-MM-DD_combined.csv`` is built:

- in this Lambda (``jobs.build_daily_csv``) when its raw objects (one paginated LIST
  of ``raw/YYYY/MM/DD/``) hold fewer gzip bytes than ``ATHENA_DAILY_THRESHOLD_BYTES``,
  and what this run has already built in the Lambda stays under it too;
- on Athena otherwise (``chalicelib.athena.daily``: this run only starts a query), and
  also when an earlier Lambda build of the day never finished (timed out, ran out of
  memory or disk: its ``lambda.json`` marker is there but the file is not), or failed
  here; a day whose Athena build is running is left to it, one whose query FAILED or
  was CANCELLED is logged with Athena's reason and started again.

With ``PARQUET_DAILY`` every such day also gets its Parquet copy, on Athena whatever
the day's size. Without a threshold (unset or ``-1``) and without Parquet nothing
here calls Athena.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.athena import daily as athena_daily
from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, day_before
from chalicelib.layout import daily_key_for, is_folder_marker, parquet_day_prefix, raw_day_prefix
from chalicelib.storage.base import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class DaySize:
    """What one LIST of a day's raw folder found: its objects and their gzip bytes."""

    objects: int
    gzip_bytes: int


def measure_day(s3: S3Client, bucket: str, prefix: str) -> DaySize:
    """The raw objects under ``raw/YYYY/MM/DD/`` and their bytes: one paginated LIST."""
    objects = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not is_folder_marker(item["Key"]):
                objects += 1
                size += int(item.get("Size", 0))
    return DaySize(objects, size)


def days_to_consider(fired_at: str | datetime, catchup_days: int) -> list[date]:
    """Yesterday first, then the catch-up days, newest first."""
    yesterday = day_before(fired_at)
    return [yesterday - timedelta(days=n) for n in range(catchup_days + 1)]


@dataclass
class DailySchedule:
    """One run of the schedule; :meth:`run` says what it did per day."""

    store: ObjectStore
    s3: S3Client
    settings: Settings
    athena_client: Callable[[], AthenaClient]
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    _job: athena_daily.AthenaDaily | None = None
    _sizes: dict[date, DaySize] = field(default_factory=dict)

    @property
    def job(self) -> athena_daily.AthenaDaily:
        if self._job is None:
            self._job = athena_daily.AthenaDaily(
                self.athena_client(), self.s3, self.settings, self.log
            )
        return self._job

    def size(self, day: date) -> DaySize:
        if day not in self._sizes:
            prefix = raw_day_prefix(day, self.settings)
            self._sizes[day] = measure_day(self.s3, self.settings.bucket, prefix)
        return self._sizes[day]

    def run(self, fired_at: str | datetime) -> list[dict[str, Any]]:
        attempt = fired_at if isinstance(fired_at, str) else fired_at.isoformat()
        daily = self.settings.daily
        days = days_to_consider(fired_at, daily.catchup_days)
        budget = daily.athena_threshold_bytes
        outcomes: list[dict[str, Any]] = []
        failures: list[BaseException] = []
        for index, day in enumerate(days):
            outcome: dict[str, Any] = {"event": "schedule", "day": day.isoformat()}
            # Catch-up days are built only when they hold data; yesterday always.
            if index == 0 or self.size(day).objects:
                csv, used = self._csv(day, attempt, budget, failures)
                outcome["csv"] = csv
                if budget is not None:
                    budget -= used
                if daily.parquet:
                    outcome["parquet"] = self._parquet(day, attempt)
            outcomes.append(outcome)
            self.log.info(json.dumps(outcome, separators=(",", ":")))
        if failures:
            raise failures[0]  # Athena is off: the invocation fails and is retried
        return outcomes

    # --- the combined CSV --------------------------------------------------------------

    def _csv(
        self, day: date, attempt: str, budget: int | None, failures: list[BaseException]
    ) -> tuple[str, int]:
        """What happened to the day's CSV, and the raw bytes the Lambda built here."""
        if athena_daily.key_exists(
            self.s3, self.settings.bucket, daily_key_for(day, self.settings)
        ):
            return "done", 0
        athena_on = self.settings.daily.athena_threshold_bytes is not None
        if athena_on:
            state = self.job.read_state(day, "csv.json")
            if state is not None:
                resumed = self._resume(day, state)
                if resumed != "restart":
                    return resumed, 0
                # A new attempt (a new ClientRequestToken), even on a rerun of this event.
                retry = f"{attempt} after {state.get('columns')}"
                return self._start_athena(day, retry, "retry after the query failed"), 0
            if self.job.read_state(day, "lambda.json") is not None:
                return self._start_athena(day, attempt, "the Lambda build did not finish"), 0
        size = self.size(day)
        if budget is not None and size.gzip_bytes >= budget:
            reason = f"{size.gzip_bytes} gzip bytes in {size.objects} objects"
            return self._start_athena(day, attempt, reason), 0
        if athena_on:
            self.job.write_state(
                day, "lambda.json", {"attempt": attempt, "gzipBytes": size.gzip_bytes}
            )
        try:
            report = build_daily_csv(self.store, day, self.settings)
        except Exception as exc:
            self.log.exception("the Lambda build of %s failed", day.isoformat())
            if not athena_on:
                failures.append(exc)
                return f"lambda: failed ({type(exc).__name__})", size.gzip_bytes
            return self._start_athena(day, attempt, f"the Lambda build failed: {exc}"), 0
        self.log.info(
            json.dumps(
                {"event": "daily", "engine": "lambda", **report.as_log()}, separators=(",", ":")
            )
        )
        self._log_delivery(day)
        return "lambda: built", size.gzip_bytes

    def _log_delivery(self, day: date) -> None:
        """The day's delivery rate, one line for a CloudWatch metric filter (``$.rate``).
        The CSV is published by now: a failure here is logged, never a rebuild."""
        from chalicelib.delivery.measure import measure_delivery  # only the daily build needs it

        try:
            delivery = measure_delivery(self.store, [day], self.settings).days[0]
        except Exception:
            self.log.exception("the delivery report of %s failed", day.isoformat())
        else:
            self.log.info(json.dumps(delivery.log_record(), separators=(",", ":")))

    def _start_athena(self, day: date, attempt: str, reason: str) -> str:
        athena_daily.start_csv_build(self.job, day, attempt, reason)
        return f"athena: started ({reason})"

    def _resume(self, day: date, state: dict[str, Any]) -> str:
        """A day whose Athena build was started: leave it running, take a step whose S3
        event went missing, or say ``restart`` when a query ended badly."""
        job = self.job
        executions = {
            step: job.execution(str(state[step]))
            for step in ("columns", "csv", "bad_lines")
            if state.get(step)
        }
        states = {step: athena_daily.state_of(e)[0] for step, e in executions.items()}
        failed = [step for step, s in states.items() if s in athena_daily.ENDED_BADLY]
        for step in failed:
            athena_daily.log_failed(job, day, step, executions[step])
        if failed:
            return "restart"
        if any(s in athena_daily.RUNNING_STATES for s in states.values()):
            return "athena: running"
        if "csv" in executions and "bad_lines" in executions:
            return "athena: " + athena_daily.try_publish(job, day, str(state["columns"]))
        athena_daily.start_csv_query(job, day, executions["columns"])
        return "athena: started the csv query"

    # --- the Parquet copy --------------------------------------------------------------

    def _parquet(self, day: date, attempt: str) -> str:
        job = self.job
        state = job.read_state(day, "parquet.json")
        if state is not None:
            execution = job.execution(str(state["parquet"]))
            status, _ = athena_daily.state_of(execution)
            if status == "SUCCEEDED":
                return "done"
            if status in athena_daily.RUNNING_STATES:
                return "running"
            athena_daily.log_failed(job, day, "parquet", execution)
            attempt = f"{attempt} after {state['parquet']}"
        elif job.any_under(parquet_day_prefix(self.settings.daily.parquet_prefix, day)):
            return "done"
        athena_daily.start_parquet(job, day, attempt)
        return "started"
