"""Everything the data commands share: their options, how a source is opened, how days are
read, and how library errors become one line. Each command module imports from here; this
module imports no command, so nothing under ``exporter`` imports ``exporter.cli``.

Imports nothing of AWS at module level: a local ``export`` never loads botocore.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import click

from chalicelib.config import MIN_CSV_COLUMNS, Settings
from chalicelib.csv.columns import OVERFLOW_COLUMN
from chalicelib.layout import days_between
from chalicelib.storage.base import ObjectStore, StoreError
from chalicelib.storage.local import LocalStore
from clitools import aws_errors

# --- days ------------------------------------------------------------------------------


def day_from_option(value: str, option: str) -> date:
    """One ``YYYY-MM-DD`` option value; a usage error naming ``option`` otherwise."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date like 2026-11-28 (YYYY-MM-DD)", param_hint=option
        ) from None


def days_from_options(date_: str, to_date: str | None) -> list[date]:
    """``--date`` and ``--to-date`` (default: ``--date``) → every day of the range."""
    first = day_from_option(date_, "--date")
    last = day_from_option(to_date, "--to-date") if to_date else first
    if last < first:
        raise click.BadParameter("--to-date is before --date", param_hint="--to-date")
    return days_between(first, last)


def day_range_options[F: Callable[..., Any]](command: F) -> F:
    """``--date`` and ``--to-date``, the one way every data command takes its days (read
    with ``days_from_options``)."""
    return _day_range_options(command, old_spellings=None)


def day_range_options_with_old_spellings[F: Callable[..., Any]](
    first: str, last: str
) -> Callable[[F], F]:
    """``day_range_options`` plus the command's earlier spellings (``--from``/``--to``) as
    hidden aliases, so scripts written for the last release keep working for one more."""
    return functools.partial(_day_range_options, old_spellings=(first, last))


def _day_range_options[F: Callable[..., Any]](
    command: F, *, old_spellings: tuple[str, str] | None
) -> F:
    if old_spellings is not None:
        first, last = old_spellings
        command = _merge_old_spellings(command, old_spellings)
        command = click.option(
            last, "old_to_date", hidden=True, help="The earlier spelling of --to-date."
        )(command)
        command = click.option(
            first, "old_date", hidden=True, help="The earlier spelling of --date."
        )(command)
    command = click.option(
        "--to-date", help="Last day of a range, YYYY-MM-DD (inclusive). Default: --date."
    )(command)
    return click.option(
        "--date",
        "date_",
        required=old_spellings is None,
        help="First (or only) day, YYYY-MM-DD (UTC).",
    )(command)


def _merge_old_spellings[F: Callable[..., Any]](command: F, spellings: tuple[str, str]) -> F:
    @functools.wraps(command)
    def merged(
        *args: Any,
        date_: str | None,
        to_date: str | None,
        old_date: str | None,
        old_to_date: str | None,
        **kwargs: Any,
    ) -> Any:
        if (date_ is not None and old_date is not None) or (to_date and old_to_date):
            raise click.UsageError(f"give --date/--to-date or {'/'.join(spellings)}, not both")
        date_ = date_ if date_ is not None else old_date
        if date_ is None:
            raise click.UsageError("Missing option '--date'.")
        return command(*args, date_=date_, to_date=to_date or old_to_date, **kwargs)

    return merged  # type: ignore[return-value]


# --- where the data is -----------------------------------------------------------------


def default_source() -> str:
    """The data folder ``make dev`` writes to: $ANALYTICS_DATA_DIR, else analytics_data."""
    return os.environ.get("ANALYTICS_DATA_DIR") or "analytics_data"


def source_options[F: Callable[..., Any]](
    *, reads: str = "raw/", required: bool = False
) -> Callable[[F], F]:
    """``--source``, ``--endpoint-url`` and ``--region``: where a command's data is. Without
    ``required``, the source defaults to the data folder ``make dev`` writes."""
    verb = "are" if " and " in reads else "is"
    where = f"Where {reads} {verb}: a directory (e.g. analytics_data) or s3://bucket[/prefix]."
    default = "" if required else " Default: $ANALYTICS_DATA_DIR, else analytics_data."

    def decorate(command: F) -> F:
        for option in reversed(
            [
                click.option("--source", required=required, help=where + default),
                click.option(
                    "--endpoint-url", help="S3-compatible endpoint (MinIO, LocalStack, moto)."
                ),
                click.option(
                    "--region", help="AWS region of the bucket. Default: the standard chain."
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


def open_source(
    source: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    *,
    max_connections: int | None = None,
) -> tuple[ObjectStore, str]:
    """``DIR`` or ``s3://bucket[/prefix]`` → a store and the prefix the layout starts at.

    ``max_connections``: the S3 client's connection pool, for that many threads."""
    if source.startswith("s3://"):
        bucket, _, prefix = source[len("s3://") :].partition("/")
        if not bucket:
            raise click.BadParameter("an S3 source looks like s3://bucket[/prefix]")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return _s3_store(bucket, endpoint_url, region, max_connections), prefix
    path = Path(source)
    if not path.is_dir():
        raise click.BadParameter(f"{source} is not a directory", param_hint="--source")
    return LocalStore(path), ""


def _s3_store(
    bucket: str, endpoint_url: str | None, region: str | None, max_connections: int | None
) -> ObjectStore:
    # Imported here: botocore costs ~0.1 s to import, and a local source never needs it.
    from botocore.config import Config

    from chalicelib.aws import make_client
    from chalicelib.storage.s3 import S3Store

    with aws_errors("S3"):  # a missing AWS_PROFILE fails here already
        config = Config(max_pool_connections=max_connections) if max_connections else None
        client = make_client("s3", region=region, endpoint_url=endpoint_url, config=config)
    return S3Store(client, bucket)


def settings_for(prefix: str, neutralize: bool, max_columns: int) -> Settings:
    """The stage settings a command converts with, its layout under ``prefix``."""
    return Settings(neutralize_formulas=neutralize, max_csv_columns=max_columns).under(prefix)


# --- running -----------------------------------------------------------------------------


def report_errors[T](action: Callable[[], T]) -> T:
    """Library errors become one line on stderr and exit code 1, never a traceback."""
    try:
        with aws_errors("S3"):
            return action()
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[str], None]]:
    """A progress bar on a terminal's stderr; silent otherwise (click would still print the
    label), so logs and pipes stay clean."""
    if not sys.stderr.isatty():
        yield lambda _name: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield lambda _name: bar.update(1)


def worker_count(requested: int | None, sources: int, store: ObjectStore | None = None) -> int:
    """``--jobs`` (default: one per CPU), never more than there are sources; 1 for a
    ``store`` that is not a local folder: S3 objects are read in this process (a boto3
    client does not cross into worker processes, and network reads gain little there)."""
    if store is not None and not isinstance(store, LocalStore):
        return 1
    wanted = requested if requested is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, sources))


# --- CSV options ---------------------------------------------------------------------------

JOBS_OPTION = click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes reading local files [default: one per CPU]. "
    "The output is the same bytes whatever the number.",
)

MAX_COLUMNS_OPTION = click.option(
    "--max-columns",
    type=click.IntRange(min=MIN_CSV_COLUMNS),
    default=Settings.max_csv_columns,
    show_default=True,
    help="Most columns in the CSV, the overflow column included; keys past it go into "
    f"one JSON column, {OVERFLOW_COLUMN}.",
)

BOM_OPTION = click.option(
    "--bom",
    is_flag=True,
    help="Start the CSV with a UTF-8 byte-order mark, so LibreOffice's default import "
    "and Excel on Windows read it as UTF-8 (pandas, DuckDB and polars do either way).",
)
