"""Athena: the daily CSV as one SQL query over the raw/ layout.

Past one Lambda's reach the exporter's job moves to Amazon Athena, reading the same
``raw/YYYY/MM/DD/HH/*.gz`` objects through the Glue table that
``infrastructure/pipeline.yaml`` defines (OpenX JSON SerDe, partition projection on
year/month/day/hour, all strings, zero-padded like the S3 path).

The query produces the columns of the Lambda export (SPEC "CSV schema"): the fixed
leading columns, then the other top-level fields sorted by name, then ``attr_*``
from ``metricAttributes`` sorted, one row per ``eventId`` (the first by
``serverTimestamp``). Attribute keys vary per day, so they are either given or
discovered with a first, cheap query (:func:`build_attribute_keys_query`).

Everything here is pure except :func:`run_query` / :func:`execute_query` /
:func:`fetch_rows`, which take a boto3 Athena client. Names from the outside world
(database, table, attribute keys, context keys) only ever reach the SQL through
:func:`quote_identifier` or :func:`quote_literal`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from chalicelib.csv.columns import ATTRIBUTE_PREFIX, FIXED_COLUMNS

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

# Top-level fields of the stored record that the Glue table declares besides the fixed
# ones; they follow the fixed columns sorted by name, together with any extra context
# keys the caller names.
KNOWN_EXTRA_COLUMNS: tuple[str, ...] = ("appVersion", "derivedTimestamp", "eventId", "gitCommitSha")
ATTRIBUTE_SEPARATOR = "_"
# How deep discovery follows nested attribute objects before rendering the rest as JSON.
DEFAULT_ATTRIBUTE_DEPTH = 3
DEFAULT_DATABASE = "owned_analytics"
DEFAULT_TABLE = "events"
DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_POLL_SECONDS = 1.0

_ATTRS = '"__attrs"'
_ROW_NUMBER = '"__rn"'
_MAP_TYPE = "MAP(VARCHAR, JSON)"

AttributeKey = str | Sequence[str]
"""A top-level ``metricAttributes`` key, or a path of keys into nested objects."""


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
    query_execution_id: str
    output_location: str
    data_scanned_bytes: int | None = None


# --- quoting -------------------------------------------------------------------------


def _check_text(value: str, what: str) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character: {value!r}")


def quote_identifier(name: str) -> str:
    """A Trino/Athena delimited identifier: double quotes, embedded quotes doubled."""
    _check_text(name, "identifier")
    if not name:
        raise ValueError("identifier must not be empty")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A Trino/Athena string literal: single quotes, embedded quotes doubled.

    Backslashes have no special meaning in Trino string literals, so nothing else
    needs escaping.
    """
    _check_text(value, "string literal")
    return "'" + value.replace("'", "''") + "'"


def _table_ref(database: str, table: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(table)}"


def _column_ref(field: str) -> str:
    # Glue column names are lower case; the SerDe maps camelCase JSON keys onto them.
    return quote_identifier(field.lower())


# --- attribute keys ------------------------------------------------------------------


def normalize_attribute_key(key: AttributeKey) -> tuple[str, ...]:
    """``"action"`` -> ``("action",)``; a sequence of keys is a path into nested objects."""
    path: tuple[str, ...] = (key,) if isinstance(key, str) else tuple(key)
    if not path:
        raise ValueError("an attribute key path must not be empty")
    for part in path:
        _check_text(part, "attribute key")
    return path


def attribute_column(path: AttributeKey) -> str:
    """The CSV column for an attribute path: nested keys flatten with ``_``."""
    return ATTRIBUTE_PREFIX + ATTRIBUTE_SEPARATOR.join(normalize_attribute_key(path))


def parse_attribute_option(text: str) -> tuple[str, ...]:
    """CLI form: ``action`` is a top-level key; ``["nested","depth"]`` is a JSON path."""
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"attribute path {text!r} is not a JSON array: {exc.msg}") from None
        if not isinstance(parsed, list) or not all(isinstance(p, str) for p in parsed):
            raise ValueError(f"attribute path {text!r} must be a JSON array of strings")
        return normalize_attribute_key(parsed)
    return normalize_attribute_key(text)


def _group_attribute_columns(
    attribute_keys: Iterable[AttributeKey],
) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Sorted (column, paths) pairs; paths that flatten to the same column share it."""
    columns: dict[str, list[tuple[str, ...]]] = {}
    for key in attribute_keys:
        path = normalize_attribute_key(key)
        paths = columns.setdefault(attribute_column(path), [])
        if path not in paths:
            paths.append(path)
    return sorted((column, sorted(paths)) for column, paths in columns.items())


# --- SQL builders --------------------------------------------------------------------


def _day(day: dt.date | str) -> dt.date:
    if isinstance(day, dt.datetime):
        return day.date()
    if isinstance(day, dt.date):
        return day
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"date {day!r} is not YYYY-MM-DD") from None


def partition_predicates(day: dt.date | str) -> str:
    """``year``/``month``/``day`` equal to the zero-padded path segments of that UTC day.

    With partition projection these pin the query to the 24 hour prefixes of one day:
    Athena lists nothing else.
    """
    d = _day(day)
    return (
        f'"year" = {quote_literal(f"{d:%Y}")} '
        f'AND "month" = {quote_literal(f"{d:%m}")} '
        f'AND "day" = {quote_literal(f"{d:%d}")}'
    )


def _attributes_map(column: str = '"metricattributes"') -> str:
    # TRY: a string that is not JSON gives NULL instead of failing the whole query.
    return f"TRY_CAST(TRY(json_parse({column})) AS {_MAP_TYPE})"


def _attribute_value(path: tuple[str, ...]) -> str:
    """JSON value at ``path`` inside the parsed attributes map (SQL NULL when absent)."""
    expr = f"element_at({_ATTRS}, {quote_literal(path[0])})"
    for part in path[1:]:
        expr = f"element_at(TRY_CAST({expr} AS {_MAP_TYPE}), {quote_literal(part)})"
    return expr


def _render_json(value: str) -> str:
    """Scalars as their text (strings unquoted), JSON null as NULL, arrays/objects as JSON."""
    return f"COALESCE(json_extract_scalar({value}, '$'), NULLIF(json_format({value}), 'null'))"


def output_columns(
    attribute_keys: Iterable[AttributeKey] = (),
    context_keys: Iterable[str] = (),
) -> list[str]:
    """The CSV header the query produces, in order."""
    fixed = set(FIXED_COLUMNS)
    extra = sorted({*KNOWN_EXTRA_COLUMNS, *context_keys} - fixed - {"metricAttributes"})
    return [*FIXED_COLUMNS, *extra, *(c for c, _ in _group_attribute_columns(attribute_keys))]


def build_daily_csv_query(
    database: str,
    table: str,
    day: dt.date | str,
    attribute_keys: Iterable[AttributeKey] = (),
    context_keys: Iterable[str] = (),
    *,
    order_rows: bool = True,
) -> str:
    """Athena SQL whose result CSV is the day's ``YYYY-MM-DD_combined.csv`` columns.

    ``attribute_keys`` become ``attr_*`` columns (a key, or a path of keys into nested
    objects, flattened with ``_``), sorted by column name. ``context_keys`` are extra
    top-level fields (custom context) that exist as columns of the table (add them to
    the Glue table first); they are sorted in with ``appVersion``, ``eventId``, ...

    One row per ``eventId``: ``row_number()`` over each ``eventId`` ordered by
    ``serverTimestamp`` keeps the first delivery of a retried event. Rows without an
    ``eventId`` are lines the SerDe could not parse (the server always sets one) and
    are left out. ``order_rows=False`` drops the final ORDER BY, which matters only
    for very large days.
    """
    context = list(context_keys)
    for key in context:
        _check_text(key, "context key")
        if not key:
            raise ValueError("context key must not be empty")
    d = _day(day)
    select: list[str] = []
    for name in output_columns((), context):
        select.append(f"{_column_ref(name)} AS {quote_identifier(name)}")
    for column, paths in _group_attribute_columns(attribute_keys):
        values = [_render_json(_attribute_value(p)) for p in paths]
        expr = values[0] if len(values) == 1 else f"COALESCE({', '.join(values)})"
        select.append(f"{expr} AS {quote_identifier(column)}")
    select_sql = ",\n  ".join(select)
    order_sql = '\nORDER BY "servertimestamp", "eventid"' if order_rows else ""
    return (
        f"-- Daily CSV for {d.isoformat()} (UTC day of Firehose arrival): one row per eventId.\n"
        "WITH day_events AS (\n"
        "  SELECT\n"
        "    *,\n"
        f"    {_attributes_map()} AS {_ATTRS},\n"
        '    row_number() OVER (PARTITION BY "eventid" '
        f'ORDER BY "servertimestamp" ASC NULLS LAST, "timestamp" ASC) AS {_ROW_NUMBER}\n'
        f"  FROM {_table_ref(database, table)}\n"
        f"  WHERE {partition_predicates(d)}\n"
        '    AND "eventid" IS NOT NULL\n'
        ")\n"
        "SELECT\n"
        f"  {select_sql}\n"
        "FROM day_events\n"
        f"WHERE {_ROW_NUMBER} = 1"
        f"{order_sql}"
    )


def build_attribute_keys_query(
    database: str,
    table: str,
    day: dt.date | str,
    *,
    max_depth: int = DEFAULT_ATTRIBUTE_DEPTH,
) -> str:
    """Athena SQL listing the attribute key paths present that day, one per row.

    Each row's single column ``key_path`` is a JSON array of keys (``["action"]``,
    ``["nested","depth"]``): leaves of ``metricAttributes`` down to ``max_depth``
    levels (deeper objects end up as JSON text in the deepest column). Parse the rows
    with :func:`parse_attribute_paths`.
    """
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    levels = [
        "level1 AS (\n"
        "  SELECT ARRAY[k] AS key_path, v\n"
        "  FROM attributes\n"
        "  CROSS JOIN UNNEST(m) AS u (k, v)\n"
        ")"
    ]
    for n in range(2, max_depth + 1):
        levels.append(
            f"level{n} AS (\n"
            "  SELECT key_path || k AS key_path, child AS v\n"
            f"  FROM level{n - 1}\n"
            f"  CROSS JOIN UNNEST(TRY_CAST(level{n - 1}.v AS {_MAP_TYPE})) AS u (k, child)\n"
            ")"
        )
    leaves = []
    for n in range(1, max_depth + 1):
        where = "" if n == max_depth else f" WHERE TRY_CAST(v AS {_MAP_TYPE}) IS NULL"
        leaves.append(f"  SELECT key_path FROM level{n}{where}")
    d = _day(day)
    return (
        f"-- metricAttributes key paths present on {d.isoformat()} (UTC day of Firehose arrival).\n"
        "WITH attributes AS (\n"
        f"  SELECT {_attributes_map()} AS m\n"
        f"  FROM {_table_ref(database, table)}\n"
        f"  WHERE {partition_predicates(d)}\n"
        '    AND "metricattributes" IS NOT NULL\n'
        "),\n" + ",\n".join(levels) + "\n"
        "SELECT DISTINCT json_format(CAST(key_path AS JSON)) AS key_path\n"
        "FROM (\n" + "\n  UNION ALL\n".join(leaves) + "\n) AS leaves\n"
        "ORDER BY 1"
    )


def parse_attribute_paths(values: Iterable[str]) -> list[tuple[str, ...]]:
    """Turn ``key_path`` cells from :func:`build_attribute_keys_query` into paths."""
    paths: list[tuple[str, ...]] = []
    for value in values:
        parsed = json.loads(value)
        if (
            not isinstance(parsed, list)
            or not parsed
            or not all(isinstance(p, str) for p in parsed)
        ):
            raise ValueError(f"unexpected key_path cell {value!r}")
        path = tuple(parsed)
        if path not in paths:
            paths.append(path)
    return paths


# --- running queries -----------------------------------------------------------------


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


def run_query(
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
) -> str:
    """Run ``sql`` to completion and return the S3 URI of its result CSV."""
    return execute_query(
        athena,
        sql,
        workgroup=workgroup,
        output_location=output_location,
        database=database,
        timeout=timeout,
        poll_interval=poll_interval,
        sleep=sleep,
        clock=clock,
    ).output_location


def fetch_rows(athena: AthenaClient, query_execution_id: str) -> Iterator[list[str | None]]:
    """The result rows of a finished query, header row included, as text cells."""
    paginator = athena.get_paginator("get_query_results")
    for page in paginator.paginate(QueryExecutionId=query_execution_id):
        for row in page.get("ResultSet", {}).get("Rows", []):
            yield [cell.get("VarCharValue") for cell in row.get("Data", [])]


def discover_attribute_keys(
    athena: AthenaClient,
    database: str,
    table: str,
    day: dt.date | str,
    *,
    workgroup: str | None = None,
    output_location: str | None = None,
    max_depth: int = DEFAULT_ATTRIBUTE_DEPTH,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    poll_interval: float = DEFAULT_POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[tuple[str, ...]]:
    """Run :func:`build_attribute_keys_query` and return the key paths it found."""
    sql = build_attribute_keys_query(database, table, day, max_depth=max_depth)
    execution = execute_query(
        athena,
        sql,
        workgroup=workgroup,
        output_location=output_location,
        timeout=timeout,
        poll_interval=poll_interval,
        sleep=sleep,
    )
    rows = fetch_rows(athena, execution.query_execution_id)
    cells = [row[0] for row in rows if row and row[0]]
    if cells and cells[0] == "key_path":
        cells = cells[1:]
    return parse_attribute_paths(c for c in cells if c is not None)


# --- command line --------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@click.command("athena-query")
@click.option(
    "--date",
    "day",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="UTC day to export, YYYY-MM-DD.",
)
@click.option("--database", default=DEFAULT_DATABASE, show_default=True, help="Glue database.")
@click.option("--table", default=DEFAULT_TABLE, show_default=True, help="Glue table.")
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="KEY",
    help="metricAttributes key to export as attr_KEY (repeatable); a nested key as a JSON "
    'array, e.g. \'["nested","depth"]\'. With --run and none given, they are discovered.',
)
@click.option(
    "--context-key",
    "context_keys",
    multiple=True,
    metavar="NAME",
    help="Extra top-level (custom context) field that is a column of the table (repeatable).",
)
@click.option(
    "--run", "run", is_flag=True, help="Run the query on Athena and print the result CSV location."
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
        keys: list[tuple[str, ...]] = [parse_attribute_option(a) for a in attributes]
        if output_location is not None and not output_location.startswith("s3://"):
            raise ValueError(f"--output-location must be an s3:// URI, not {output_location!r}")
        if run and not workgroup and not output_location:
            raise ValueError("--run needs --workgroup or --output-location s3://bucket/prefix/")
        athena: AthenaClient | None = (
            make_client("athena", region=region, endpoint_url=endpoint_url) if run else None
        )
        if athena is not None and not keys:
            keys = discover_attribute_keys(
                athena,
                database,
                table,
                day.date(),
                workgroup=workgroup,
                output_location=output_location,
                timeout=timeout,
            )
            click.echo(f"-- discovered {len(keys)} attribute key(s)", err=True)
        elif not keys:
            click.echo(
                "-- no --attribute given: the query has no attr_* columns "
                "(with --run they are discovered)",
                err=True,
            )
        sql = build_daily_csv_query(
            database, table, day.date(), keys, context_keys, order_rows=not unordered
        )
        click.echo(sql)
        if athena is not None:
            location = run_query(
                athena,
                sql,
                workgroup=workgroup,
                output_location=output_location,
                timeout=timeout,
            )
            click.echo(location)
    except (ClientError, BotoCoreError) as exc:
        raise click.ClickException(describe_aws_error(exc, "Athena") or _one_line(exc)) from exc
    except (AthenaQueryError, ValueError, TypeError) as exc:
        raise click.ClickException(_one_line(exc)) from exc
