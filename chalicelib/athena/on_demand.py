"""A day's queries run on demand (``python -m exporter athena-query``): the CSV query with
the day's columns found first, the bad-lines query, the delivery query; each printed, and
run when a runner is given. Output goes through ``say`` (results) and ``warn`` (notes), so
the command decides where lines go and this module stays free of click.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from chalicelib.athena.delivery import build_delivery_query, delivery_log_record
from chalicelib.athena.queries import (
    ColumnCounts,
    DailyQuery,
    build_bad_lines_query,
    daily_csv_query,
)
from chalicelib.athena.runner import BadObject, Runner, discover_columns, find_bad_objects
from chalicelib.athena.sql import FLATTEN_SEPARATOR
from chalicelib.csv.columns import ATTRIBUTE_PREFIX, OVERFLOW_COLUMN

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

Say = Callable[[str], None]

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


# --- running --------------------------------------------------------------------------


def day_runner(
    client_factory: Callable[[], AthenaClient] | None,
    *,
    workgroup: str | None,
    output_location: str | None,
    timeout: float,
) -> Runner | None:
    """A runner when queries are to run (``client_factory`` given), else None; ValueError
    when the result location is missing or not an s3:// URI."""
    if output_location is not None and not output_location.startswith("s3://"):
        raise ValueError(f"--output-location must be an s3:// URI, not {output_location!r}")
    if client_factory is None:
        return None
    if not workgroup and not output_location:
        raise ValueError("--run needs --workgroup or --output-location s3://bucket/prefix/")
    return Runner(
        client_factory(), workgroup=workgroup, output_location=output_location, timeout=timeout
    )


def delivery_day(runner: Runner | None, database: str, table: str, day: dt.date, say: Say) -> None:
    """The delivery query; run, its daily log line and the result location."""
    sql = build_delivery_query(database, table, day)
    say(sql)
    if runner is not None:
        rows, location = runner.results(sql)
        say(json.dumps(delivery_log_record(day, rows[0]), separators=(",", ":")))
        say(location)


def bad_lines_day(runner: Runner | None, database: str, table: str, day: dt.date, say: Say) -> None:
    """The bad-lines query; run, one line per object holding bad lines and the location."""
    say(build_bad_lines_query(database, table, day))
    if runner is not None:
        objects, location = find_bad_objects(runner, database, table, day)
        report_bad_objects(objects, say, prefix="")
        say(location)


def csv_day(
    runner: Runner | None,
    database: str,
    table: str,
    day: dt.date,
    *,
    columns: ColumnCounts | None,
    max_columns: int,
    order_rows: bool,
    say: Say,
    warn: Say,
) -> None:
    """The day's CSV query (its columns found first when run without named ones); run,
    the objects whose bad lines it left out (on ``warn``) and the result location."""
    query = _csv_query(runner, day, database, table, columns, max_columns, order_rows, warn)
    say(query.sql)
    if runner is None:
        return
    location = runner.execute(query.sql).output_location
    objects, _ = find_bad_objects(runner, database, table, day)
    if objects:
        warn(
            f"-- {sum(o.bad_lines for o in objects)} line(s) in {len(objects)} object(s) "
            "are not a JSON object and are not in the CSV (object, bad, lines):"
        )
        report_bad_objects(objects, warn, prefix="--   ")
    say(location)


def report_bad_objects(objects: list[BadObject], say: Say, prefix: str) -> None:
    """One line per object: its path, then bad lines of lines (a tab between)."""
    for found in objects:
        say(f"{prefix}{found.path}\t{found.bad_lines}\t{found.lines}")


def _csv_query(
    runner: Runner | None,
    day: dt.date,
    database: str,
    table: str,
    columns: ColumnCounts | None,
    max_columns: int,
    order_rows: bool,
    warn: Say,
) -> DailyQuery:
    if columns is None:
        if runner is None:
            warn(
                "-- no --attribute or --context-key given: the query has the usual columns "
                "only (with --run every column of the day is found first)"
            )
            columns = named_columns((), ())
        else:
            columns = discover_columns(runner, database, table, day)
            warn(f"-- found {len(columns)} column(s) on {day.isoformat()}")
    query = daily_csv_query(
        database, table, day, columns, max_columns=max_columns, order_rows=order_rows
    )
    if query.overflowed:
        warn(
            f"-- {len(query.overflowed)} column(s) past the column budget or the query size "
            f"limit are in the JSON column {OVERFLOW_COLUMN}"
        )
    return query
