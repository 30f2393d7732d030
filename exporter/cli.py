"""A thin click layer: parse options, call chalicelib, turn errors into one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from functools import partial
from pathlib import Path
from typing import BinaryIO

import click

from chalicelib.aws import make_client
from chalicelib.config import MIN_CSV_COLUMNS, Settings
from chalicelib.csv.columns import OVERFLOW_COLUMN
from chalicelib.csv.convert import ConversionReport
from chalicelib.jobs import convert_sources, days_between, export_range, keys_for_days
from chalicelib.storage import LocalStore, ObjectStore, S3Store, StoreError
from clitools import CONTEXT_SETTINGS, TerminalSafeGroup, aws_errors, echo


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date like 2026-11-28", param_hint=option
        ) from None


def parse_days(date_: str, to_date: str | None) -> list[date]:
    """``--date`` and ``--to-date`` (default: ``--date``) → every day of the range."""
    first = parse_day(date_, "--date")
    last = parse_day(to_date, "--to-date") if to_date else first
    if last < first:
        raise click.BadParameter("--to-date is before --date", param_hint="--to-date")
    return days_between(first, last)


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
        from botocore.config import Config  # here: a local export needs no botocore

        with aws_errors("S3"):  # a missing AWS_PROFILE fails here already
            config = Config(max_pool_connections=max_connections) if max_connections else None
            client = make_client("s3", region=region, endpoint_url=endpoint_url, config=config)
        return S3Store(client, bucket), prefix
    path = Path(source)
    if not path.is_dir():
        raise click.BadParameter(f"{source} is not a directory", param_hint="--source")
    return LocalStore(path), ""


def report_errors[T](action: Callable[[], T]) -> T:
    """Library errors become one line on stderr and exit code 1, never a traceback."""
    try:
        with aws_errors("S3"):
            return action()
    except (StoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[str], None]]:
    # Quiet when stderr is not a terminal (click would still print the label), so
    # logs and pipes stay clean.
    if not sys.stderr.isatty():
        yield lambda _name: None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True) as bar:
        yield lambda _name: bar.update(1)


def _summary(report: ConversionReport, errors_path: str) -> str:
    lines = [
        f"wrote {report.rows} rows to {report.output}",
        f"  from {report.sources} raw object(s); {report.duplicates} duplicate(s) dropped; "
        f"{report.bad_lines} bad line(s)" + (f" sent to {errors_path}" if report.bad_lines else ""),
    ]
    if report.overflowed:
        lines.append(
            f"  more distinct keys than {len(report.columns)} columns: the rest are in the "
            f"JSON column {OVERFLOW_COLUMN} (raise --max-columns to give them columns)"
        )
    return "\n".join(lines)


def _finish(report: ConversionReport, errors_path: str, out: Path) -> None:
    """Prints the summary; a run where lines were read but none converted is an error
    (exit 1, one line), and its empty CSV is not left behind."""
    if report.rows or not report.bad_lines:
        echo(_summary(report, str(errors_path)))
        return
    out.unlink(missing_ok=True)
    raise click.ClickException(
        f"nothing converted: all {report.bad_lines} line(s) of {report.sources} file(s) are "
        f"not events (see {errors_path}); no CSV written"
    )


def _file_output(
    path: Path, creatable_under: Path | None = None
) -> Callable[[], AbstractContextManager[BinaryIO]]:
    """Where a CSV goes. Its folder must exist, unless it is inside ``creatable_under``
    (the data folder being exported, whose layout has a csv/ folder): a typo in
    ``--out`` must not leave new folders elsewhere."""
    folder = path.parent
    inside = creatable_under is not None and folder.resolve().is_relative_to(
        creatable_under.resolve()
    )
    if not folder.is_dir() and not inside:
        raise click.BadParameter(
            f"folder {folder} does not exist: create it first, or write elsewhere",
            param_hint="--out",
        )
    store = LocalStore(folder)
    return partial(store.open_write, path.name)


def default_source() -> str:
    """The data folder ``make dev`` writes to: $ANALYTICS_DATA_DIR, else analytics_data."""
    return os.environ.get("ANALYTICS_DATA_DIR") or "analytics_data"


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


def day_range_options[F: Callable[..., object]](command: F) -> F:
    """``--date`` and ``--to-date``, the one way every data command takes its days
    (read with ``parse_days``)."""
    command = click.option(
        "--to-date", help="Last day of a range, YYYY-MM-DD (inclusive). Default: --date."
    )(command)
    return click.option(
        "--date", "date_", required=True, help="First (or only) day, YYYY-MM-DD (UTC)."
    )(command)


def worker_count(requested: int | None, sources: int) -> int:
    wanted = requested if requested is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, sources))


@click.group(cls=TerminalSafeGroup, context_settings=CONTEXT_SETTINGS)
def cli() -> None:
    """Turn raw analytics events into CSV (deployment commands: python -m deploy)."""


@cli.command("export")
@day_range_options
@click.option(
    "--source",
    help="Where raw/ is: a directory or s3://bucket[/prefix]. "
    "Default: $ANALYTICS_DATA_DIR, else analytics_data.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV to write (its folder must exist). Default: <source>/csv/DAY_combined.csv "
    "for a directory, ./DAY_combined.csv for S3.",
)
@click.option("--endpoint-url", help="S3-compatible endpoint (MinIO, LocalStack, moto).")
@click.option("--region", help="AWS region of the bucket. Default: the standard chain.")
@click.option(
    "--no-neutralize",
    is_flag=True,
    help="Keep cells starting with = + - @ as they are (default: prefix them with ').",
)
@MAX_COLUMNS_OPTION
@JOBS_OPTION
@BOM_OPTION
def export_command(
    date_: str,
    to_date: str | None,
    source: str | None,
    out: Path | None,
    endpoint_url: str | None,
    region: str | None,
    no_neutralize: bool,
    max_columns: int,
    jobs: int | None,
    bom: bool,
) -> None:
    """Export a day (or a range of days) of raw events as one deduplicated CSV."""
    days = parse_days(date_, to_date)
    first, last = days[0], days[-1]
    source = source or default_source()
    store, prefix = open_source(source, endpoint_url, region)
    settings = settings_for(prefix, neutralize=not no_neutralize, max_columns=max_columns)
    keys = report_errors(lambda: keys_for_days(store, settings.raw_prefix, days))
    if not keys:
        span = first.isoformat() if first == last else f"{first} to {last}"
        raise click.ClickException(
            f"no raw events for {span} under {store.describe(settings.raw_prefix)}"
        )
    name = first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"
    local_root = store.root if isinstance(store, LocalStore) else None
    if out is None:
        # Beside the data for a folder (where the daily schedule writes it); here for S3.
        folder = local_root / settings.csv_prefix if local_root is not None else Path()
        out = folder / f"{name}_combined.csv"
    output = _file_output(out, creatable_under=local_root)
    errors_path = out.with_name(out.name.removesuffix(".csv") + ".errors.jsonl")
    with progress(len(keys), "converting") as advance:
        report = report_errors(
            lambda: export_range(
                store,
                keys,
                settings,
                output=output,
                output_name=str(out),
                errors_store=LocalStore(errors_path.parent),
                errors_key=errors_path.name,
                on_source_done=advance,
                # S3 objects are read in this process: a boto3 client does not cross
                # into worker processes, and network reads gain little from them.
                jobs=1 if isinstance(store, S3Store) else worker_count(jobs, len(keys)),
                bom=bom,
            )
        )
    _finish(report, str(errors_path), out)


@cli.command("json-to-csv")
@click.argument(
    "inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file to write.",
)
@click.option("--no-neutralize", is_flag=True, help="Keep formula-like cells as they are.")
@MAX_COLUMNS_OPTION
@JOBS_OPTION
@BOM_OPTION
def json_to_csv_command(
    inputs: tuple[Path, ...],
    out: Path,
    no_neutralize: bool,
    max_columns: int,
    jobs: int | None,
    bom: bool,
) -> None:
    """Convert raw files (gzip or plain NDJSON, in any order given) into one CSV."""
    errors_path = out.with_name(out.name.removesuffix(".csv") + ".errors.jsonl")
    output = _file_output(out)

    def run() -> ConversionReport:
        sources = [(str(path), partial(path.open, "rb")) for path in inputs]
        with progress(len(sources), "converting") as advance:
            return convert_sources(
                sources,  # type: ignore[arg-type]
                output=output,
                output_name=str(out),
                errors_store=LocalStore(errors_path.parent),
                errors_key=errors_path.name,
                neutralize_formulas=not no_neutralize,
                max_columns=max_columns,
                on_source_done=advance,
                jobs=worker_count(jobs, len(sources)),
                bom=bom,
            )

    report = report_errors(run)
    _finish(report, str(errors_path), out)


def settings_for(prefix: str, neutralize: bool, max_columns: int) -> Settings:
    return Settings(neutralize_formulas=neutralize, max_csv_columns=max_columns).under(prefix)


# Data commands defined beside the features they query (Athena, rejects) or change (erasure).
def _register_optional_commands() -> None:
    from exporter import athena, delivery, erase, rejects
    from exporter.report import command as report

    cli.add_command(athena.athena_query)
    cli.add_command(delivery.delivery_command)
    cli.add_command(rejects.rejected_command)
    cli.add_command(rejects.replay_command)
    cli.add_command(erase.erase_command)
    cli.add_command(report.report_command)


_register_optional_commands()


def main() -> None:
    cli(prog_name="python -m exporter")
