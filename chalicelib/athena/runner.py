"""Running queries on Athena: start, poll until done, read the result rows.

Every function takes a boto3 Athena client (``chalicelib.aws.make_client``); the SQL
comes from ``queries.py``. A query that fails, is cancelled or outlives its timeout
raises :class:`AthenaQueryError` with a one-line message (a timed-out query is
stopped, so it does not go on scanning and billing in the background).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.athena.queries import (
    ColumnCounts,
    build_bad_lines_query,
    build_columns_query,
    parse_column_counts,
)

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_POLL_SECONDS = 1.0


class AthenaQueryError(RuntimeError):
    """An Athena query ended in FAILED or CANCELLED, or reported no result location."""

    def __init__(
        self, message: str, *, query_execution_id: str | None = None, state: str = ""
    ) -> None:
        super().__init__(message)
        self.query_execution_id = query_execution_id
        self.state = state


class AthenaQueryTimeout(AthenaQueryError):
    """The query was still queued or running when the timeout ran out (it was stopped)."""


@dataclass(frozen=True)
class QueryExecution:
    """A finished Athena query: its id, where its result CSV is, and the bytes it scanned."""

    query_execution_id: str
    output_location: str
    data_scanned_bytes: int | None = None


def execute_query(
    athena: AthenaClient,
    sql: str,
    *,
    workgroup: str | None = None,
    output_location: str | None = None,
    database: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> QueryExecution:
    """Start ``sql`` and poll until it ends; raise unless it SUCCEEDED.

    Give a ``workgroup`` (whose configuration holds the result location), an
    ``output_location`` (``s3://bucket/prefix/``), or both. On timeout the query is
    stopped, so it does not go on scanning (and billing) in the background.
    """
    if not workgroup and not output_location:
        raise ValueError("give a workgroup or an output location (s3://bucket/prefix/)")
    if output_location and not output_location.startswith("s3://"):
        raise ValueError(f"output location must be an s3:// URI, not {output_location!r}")
    if timeout <= 0 or poll_interval < 0:
        raise ValueError("timeout must be positive and poll_interval not negative")
    kwargs: dict[str, Any] = {"QueryString": sql}
    if workgroup:
        kwargs["WorkGroup"] = workgroup
    if output_location:
        kwargs["ResultConfiguration"] = {"OutputLocation": output_location}
    if database:
        kwargs["QueryExecutionContext"] = {"Database": database}
    execution_id = athena.start_query_execution(**kwargs)["QueryExecutionId"]
    deadline = clock() + timeout
    while True:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        status = execution.get("Status", {})
        state = status.get("State", "")
        if state == "SUCCEEDED":
            location = execution.get("ResultConfiguration", {}).get("OutputLocation")
            if not location:
                raise AthenaQueryError(
                    f"query {execution_id} succeeded but reported no result location",
                    query_execution_id=execution_id,
                    state=state,
                )
            scanned = execution.get("Statistics", {}).get("DataScannedInBytes")
            return QueryExecution(execution_id, location, scanned)
        if state in ("FAILED", "CANCELLED"):
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
                "ErrorMessage", "no reason given"
            )
            reason = " ".join(str(reason).split())
            raise AthenaQueryError(
                f"query {execution_id} {state}: {reason}",
                query_execution_id=execution_id,
                state=state,
            )
        if clock() >= deadline:
            # Best effort: the timeout is the error worth reporting.
            with contextlib.suppress(Exception):
                athena.stop_query_execution(QueryExecutionId=execution_id)
            raise AthenaQueryTimeout(
                f"query {execution_id} still {state or 'pending'} after {timeout:g} s; stopped it",
                query_execution_id=execution_id,
                state=state,
            )
        sleep(poll_interval)


def fetch_rows(athena: AthenaClient, query_execution_id: str) -> Iterator[list[str | None]]:
    """The result rows of a finished query, header row included, as text cells."""
    paginator = athena.get_paginator("get_query_results")
    for page in paginator.paginate(QueryExecutionId=query_execution_id):
        for row in page.get("ResultSet", {}).get("Rows", []):
            yield [cell.get("VarCharValue") for cell in row.get("Data", [])]


@dataclass(frozen=True)
class BadObject:
    """An object holding lines the CSV query skips (not a JSON object)."""

    path: str
    bad_lines: int
    lines: int


@dataclass(frozen=True)
class Runner:
    """One Athena client and where its queries run: what the day's queries share."""

    athena: AthenaClient
    workgroup: str | None = None
    output_location: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    poll_interval: float = DEFAULT_POLL_SECONDS
    sleep: Callable[[float], None] = time.sleep

    def execute(self, sql: str) -> QueryExecution:
        return execute_query(
            self.athena,
            sql,
            workgroup=self.workgroup,
            output_location=self.output_location,
            timeout=self.timeout,
            poll_interval=self.poll_interval,
            sleep=self.sleep,
        )

    def results(self, sql: str) -> tuple[list[list[str | None]], str]:
        """Run ``sql``: its rows (the header row left out) and its result CSV location."""
        execution = self.execute(sql)
        rows = list(fetch_rows(self.athena, execution.query_execution_id))[1:]
        return rows, execution.output_location


def discover_columns(runner: Runner, database: str, table: str, day: dt.date | str) -> ColumnCounts:
    """Run :func:`build_columns_query`: the day's columns, with how many objects hold
    each and where each is first seen."""
    rows, _ = runner.results(build_columns_query(database, table, day))
    return parse_column_counts(rows)


def find_bad_objects(
    runner: Runner, database: str, table: str, day: dt.date | str
) -> tuple[list[BadObject], str]:
    """Run :func:`build_bad_lines_query`: the objects with lines the CSV query skips,
    and the result CSV location."""
    rows, location = runner.results(build_bad_lines_query(database, table, day))
    found = []
    for row in rows:
        try:
            path, bad, lines = row
            found.append(BadObject(str(path), int(str(bad)), int(str(lines))))
        except ValueError:
            raise ValueError(f"unexpected row {row!r} from the bad lines query") from None
    return found, location
