"""``python -m exporter athena-query``: print, and with --run execute, a day's queries.

The orchestration is ``chalicelib.athena.on_demand``'s; this module reads options and
turns errors into one line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from chalicelib.athena import DEFAULT_DATABASE, DEFAULT_TABLE
from chalicelib.athena.on_demand import (
    bad_lines_day,
    csv_day,
    day_runner,
    delivery_day,
    named_columns,
    parse_attribute_option,
)
from chalicelib.athena.runner import DEFAULT_TIMEOUT_SECONDS, AthenaQueryError
from chalicelib.config import MIN_CSV_COLUMNS
from chalicelib.csv.columns import DEFAULT_MAX_COLUMNS, OVERFLOW_COLUMN
from clitools import aws_errors, echo
from exporter.options import day_from_option

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient


@click.command("athena-query")
@click.option("--date", "date_", required=True, help="UTC day to export, YYYY-MM-DD.")
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
    date_: str,
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
    day = day_from_option(date_, "--date")

    def athena_client() -> AthenaClient:
        from chalicelib.aws import make_client  # the --run path only: boto3 is slow to import

        client: AthenaClient = make_client("athena", region=region, endpoint_url=endpoint_url)
        return client

    def warn(line: str) -> None:
        echo(line, err=True)

    try:
        with aws_errors("Athena"):
            runner = day_runner(
                athena_client if run else None,
                workgroup=workgroup,
                output_location=output_location,
                timeout=timeout,
            )
            if delivery:
                delivery_day(runner, database, table, day, echo)
            elif bad_lines:
                bad_lines_day(runner, database, table, day, echo)
            else:
                named = (
                    named_columns([parse_attribute_option(a) for a in attributes], context_keys)
                    if attributes or context_keys
                    else None
                )
                csv_day(
                    runner,
                    database,
                    table,
                    day,
                    columns=named,
                    max_columns=max_columns,
                    order_rows=not unordered,
                    say=echo,
                    warn=warn,
                )
    except (AthenaQueryError, ValueError, TypeError) as exc:
        raise click.ClickException(" ".join(str(exc).split()) or type(exc).__name__) from exc
