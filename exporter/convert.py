"""``export`` and ``json-to-csv``: raw events to one deduplicated CSV, from a store's days
or from files named on the command line."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import BinaryIO

import click

from chalicelib.csv.columns import OVERFLOW_COLUMN
from chalicelib.csv.convert import ConversionReport
from chalicelib.jobs import convert_sources, export_range
from chalicelib.layout import keys_for_days
from chalicelib.storage.local import LocalStore
from clitools import echo
from exporter.options import (
    BOM_OPTION,
    JOBS_OPTION,
    MAX_COLUMNS_OPTION,
    day_range_options,
    days_from_options,
    default_source,
    open_source,
    progress,
    report_errors,
    settings_for,
    source_options,
    worker_count,
)


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


@click.command("export")
@day_range_options
@source_options()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV to write (its folder must exist). Default: <source>/csv/DAY_combined.csv "
    "for a directory, ./DAY_combined.csv for S3.",
)
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
    days = days_from_options(date_, to_date)
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
                jobs=worker_count(jobs, len(keys), store),
                bom=bom,
            )
        )
    _finish(report, str(errors_path), out)


@click.command("json-to-csv")
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
