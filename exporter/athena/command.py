"""``python -m exporter athena-query``: print, and with --run execute, a day's queries."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import click

from chalicelib.athena import DEFAULT_DATABASE, DEFAULT_TABLE
from chalicelib.athena.delivery import build_delivery_query, delivery_log_record
from chalicelib.athena.queries import (
    ColumnCounts,
    DailyQuery,
    build_bad_lines_query,
    daily_csv_query,
)
from chalicelib.athena.runner import (
    DEFAULT_TIMEOUT_SECONDS,
    AthenaQueryError,
    BadObject,
    Runner,
    discover_columns,
    find_bad_objects,
)
from chalicelib.athena.sql import FLATTEN_SEPARATOR
from chalicelib.config import MIN_CSV_COLUMNS
from chalicelib.csv.columns import ATTRIBUTE_PREFIX, DEFAULT_MAX_COLUMNS, OVERFLOW_COLUMN
from clitools import echo

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

# Top-level fields the route and the browser client always send besides the fixed
# columns: the columns of a query printed without --run (which finds the real ones).
KNOWN_EXTRA_COLUMNS: tuple[str, ...] = (
    "appVersion",
    "derivedTimestamp",
    "eventId",
    "gitCommitSha",
    "seq",
)


# --- columns named on the command line -----------------------------------------------


def parse_attribute_option(text: str) -> tuple[str, ...]:
    """``action`` is a top-level key; ``["nested","depth"]`` is a JSON path."""
    if not text.startswith("["):
        return (text,)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"attribute path {text!r} is not a JSON array: {exc.msg}") from None
    if not isinstance(parsed, list) or not parsed or not all(isinstance(p, str) for p in parsed):
        raise ValueError(f"attribute path {text!r} must be a non-empty JSON array of strings")
    return tuple(parsed)


def attribute_column(path: Sequence[str]) -> str:
    """The CSV column of an attribute path: nested keys joined with ``_``."""
    return ATTRIBUTE_PREFIX + FLATTEN_SEPARATOR.join(path)


def named_columns(
    attribute_paths: Iterable[Sequence[str]], context_keys: Iterable[str]
) -> dict[str, tuple[int, str]]:
    """Columns for a query printed without discovery: the usual top-level fields, the
    given context keys and attribute columns (each counted as held by no object)."""
    columns = [*KNOWN_EXTRA_COLUMNS]
    for key in context_keys:
        if not key or key.startswith(ATTRIBUTE_PREFIX) or key == OVERFLOW_COLUMN:
            raise ValueError(f"context key {key!r} cannot be a top-level column")
        columns.append(key)
    columns += [attribute_column(path) for path in attribute_paths]
    return dict.fromkeys(columns, (0, ""))


# --- output --------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _report_bad_objects(objects: list[BadObject], err: bool) -> None:
    """One line per object: its path, then bad lines of lines (a tab between)."""
    prefix = "--   " if err else ""
    for found in objects:
        echo(f"{prefix}{found.path}\t{found.bad_lines}\t{found.lines}", err=err)


def _csv_query(
    runner: Runner | None,
    day: dt.date,
    database: str,
    table: str,
    columns: ColumnCounts | None,
    max_columns: int,
    order_rows: bool,
) -> DailyQuery:
    if columns is None:
        if runner is None:
            echo(
                "-- no --attribute or --context-key given: the query has the usual columns "
                "only (with --run every column of the day is found first)",
                err=True,
            )
            columns = named_columns((), ())
        else:
            columns = discover_columns(runner, database, table, day)
            echo(f"-- found {len(columns)} column(s) on {day.isoformat()}", err=True)
    query = daily_csv_query(
        database, table, day, columns, max_columns=max_columns, order_rows=order_rows
    )
    if query.overflowed:
        echo(
            f"-- {len(query.overflowed)} column(s) past the column budget or the query size "
            f"limit are in the JSON column {OVERFLOW_COLUMN}",
            err=True,
        )
    return query


@click.command("athena-query")
@click.option(
    "--date",
    "day",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="UTC day to export, YYYY-MM-DD.",
)
@click.option("--database", default=DEFAULT_DATABASE, show_default=True, help="Glue database.")
@click.option(
    "--table",
    default=DEFAULT_TABLE,
    show_default=True,
    help="Glue table of raw lines (one string column, line).",
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="KEY",
    help="metricAttributes key to give a column attr_KEY (repeatable); a nested key as a JSON "
    'array, e.g. \'["nested","depth"]\'. Without it and --context-key, --run finds every column.',
)
@click.option(
    "--context-key",
    "context_keys",
    multiple=True,
    metavar="NAME",
    help="Top-level (custom context) field to give a column (repeatable); not needed with --run.",
)
@click.option(
    "--max-columns",
    type=click.IntRange(min=MIN_CSV_COLUMNS),
    default=DEFAULT_MAX_COLUMNS,
    show_default=True,
    help=f"Most columns in the CSV, {OVERFLOW_COLUMN} included (as export's --max-columns).",
)
@click.option(
    "--bad-lines",
    is_flag=True,
    help="The query listing objects with lines that are not a JSON object, instead of the CSV.",
)
@click.option(
    "--delivery",
    is_flag=True,
    help="The query of the day's delivery counts (python -m exporter delivery's totals); with "
    "--run, their daily log line.",
)
@click.option(
    "--run",
    "run",
    is_flag=True,
    help="Run the query on Athena and print, last, the result CSV location.",
)
@click.option("--workgroup", default=None, help="Athena workgroup (its result location is used).")
@click.option(
    "--output-location", default=None, metavar="S3_URI", help="s3://bucket/prefix/ for results."
)
@click.option("--region", default=None, help="AWS region (default: the SDK's configuration).")
@click.option("--endpoint-url", default=None, help="Athena endpoint override (for tests).")
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for each query before stopping it.",
)
@click.option("--unordered", is_flag=True, help="Skip the final ORDER BY (very large days).")
def athena_query(
    day: dt.datetime,
    database: str,
    table: str,
    attributes: tuple[str, ...],
    context_keys: tuple[str, ...],
    max_columns: int,
    bad_lines: bool,
    delivery: bool,
    run: bool,
    workgroup: str | None,
    output_location: str | None,
    region: str | None,
    endpoint_url: str | None,
    timeout: float,
    unordered: bool,
) -> None:
    """Print (and with --run, execute) the Athena SQL for one day's combined CSV."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.aws import describe_aws_error, make_client  # the CLI path only

    try:
        named = (
            named_columns([parse_attribute_option(a) for a in attributes], context_keys)
            if attributes or context_keys
            else None
        )
        if output_location is not None and not output_location.startswith("s3://"):
            raise ValueError(f"--output-location must be an s3:// URI, not {output_location!r}")
        if run and not workgroup and not output_location:
            raise ValueError("--run needs --workgroup or --output-location s3://bucket/prefix/")
        runner: Runner | None = None
        if run:
            client: AthenaClient = make_client("athena", region=region, endpoint_url=endpoint_url)
            runner = Runner(
                client, workgroup=workgroup, output_location=output_location, timeout=timeout
            )
        if delivery:
            sql = build_delivery_query(database, table, day.date())
            echo(sql)
            if runner is not None:
                rows, location = runner.results(sql)
                record = delivery_log_record(day.date(), rows[0])
                echo(json.dumps(record, separators=(",", ":")))
                echo(location)
            return
        if bad_lines:
            sql = build_bad_lines_query(database, table, day.date())
            echo(sql)
            if runner is not None:
                objects, location = find_bad_objects(runner, database, table, day.date())
                _report_bad_objects(objects, err=False)
                echo(location)
            return
        query = _csv_query(runner, day.date(), database, table, named, max_columns, not unordered)
        echo(query.sql)
        if runner is not None:
            location = runner.execute(query.sql).output_location
            objects, _ = find_bad_objects(runner, database, table, day.date())
            if objects:
                echo(
                    f"-- {sum(o.bad_lines for o in objects)} line(s) in {len(objects)} object(s) "
                    "are not a JSON object and are not in the CSV (object, bad, lines):",
                    err=True,
                )
                _report_bad_objects(objects, err=True)
            echo(location)
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(describe_aws_error(exc, "Athena") or _one_line(exc)) from exc
    except (AthenaQueryError, ValueError, TypeError) as exc:
        raise click.ClickException(_one_line(exc)) from exc
