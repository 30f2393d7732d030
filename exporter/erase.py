"""``python -m exporter erase``: one person's events out of the stored data.

The work is ``chalicelib.erase``; here are the options, the summary, and the Athena
locator (``--locate-with-athena``): one query over the Glue table returns the
``"$path"`` of every raw object holding a match, and only those are read.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from chalicelib.athena import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    DEFAULT_WORKGROUP,
    AthenaQueryError,
)
from chalicelib.athena.locate import locate_with_athena
from chalicelib.aws import make_client
from chalicelib.erase import (
    ErasureError,
    ErasureReport,
    ErasureRequest,
    Layout,
    Workers,
    erase,
    located_keys,
)
from chalicelib.layout import ERASURE_PREFIX
from chalicelib.storage.local import LocalStore
from chalicelib.storage.s3 import S3Store
from clitools import aws_errors, echo, terminal_safe
from exporter.options import (
    MAX_COLUMNS_OPTION,
    day_from_option,
    day_range_options_with_old_spellings,
    open_source,
    progress,
    report_errors,
    settings_for,
    source_options,
)

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

# Reads at once from S3: the work is waiting on the network.
S3_THREADS = 16

# --- the command -----------------------------------------------------------------------


def _parse_match(value: str) -> tuple[str, str]:
    name, equals, wanted = value.partition("=")
    if not equals or not name:
        raise click.BadParameter(f"{value!r} is not FIELD=VALUE", param_hint="--match")
    return name, wanted


def _counts(removed_events: int, bad: int, bodies: int) -> str:
    parts = [f"{removed_events} event(s)"]
    if bad:
        parts.append(f"{bad} bad line(s)")
    if bodies:
        parts.append(f"{bodies} rejected body(ies)")
    return ", ".join(parts)


def summary(report: ErasureReport) -> str:
    removed = report.removed
    total = _counts(removed.events, removed.bad_lines, removed.rejected_bodies)
    found = [r for r in report.objects if r.removed.total]
    if report.dry_run:
        lines = [f"would erase {total} from {len(found)} of {report.scanned} object(s) read"]
        lines += [
            f"  {terminal_safe(r.key)}: "
            + _counts(r.removed.events, r.removed.bad_lines, r.removed.rejected_bodies)
            for r in found
        ]
        lines.append("nothing was changed (--dry-run)")
    else:
        kinds = {kind: sum(1 for r in found if r.kind == kind) for kind in ("raw", "rejected")}
        lines = [
            f"erased {total} from {len(found)} object(s) ({kinds['raw']} raw, "
            f"{kinds['rejected']} rejected) of {report.scanned} read",
            f"rebuilt {len(report.parts)} CSV part(s) and {len(report.daily)} daily file(s); "
            f"deleted {len(report.errors_deleted)} errors object(s) and "
            f"{report.versions_deleted} old object version(s)",
        ]
        if report.resumed:
            lines.append(f"finished the interrupted run {report.run_id}")
        lines.append(f"audit record: {report.audit}")
    lines += [f"note: {terminal_safe(note)}" for note in report.notes]
    return "\n".join(lines)


def _athena_client(region: str | None) -> AthenaClient:
    client: AthenaClient = make_client("athena", region=region)
    return client


@click.command("erase")
@click.option(
    "--session-id",
    "session_ids",
    multiple=True,
    metavar="ID",
    help="Erase the events of this session (repeatable).",
)
@click.option(
    "--event-id", "event_ids", multiple=True, metavar="ID", help="Erase this event (repeatable)."
)
@click.option(
    "--match",
    "matches",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Erase events whose top-level FIELD has VALUE, compared as text "
    "(repeatable; every flag adds to what is erased).",
)
@day_range_options_with_old_spellings("--from", "--to")
@source_options(required=True)
@click.option(
    "--dry-run", is_flag=True, help="Only say which objects hold how many matches; change nothing."
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Objects read and rewritten at once, in threads; for a directory also the "
    f"processes that rebuild CSVs [default: one per CPU for a directory, {S3_THREADS} for S3].",
)
@click.option(
    "--no-neutralize",
    is_flag=True,
    help="Rebuild CSVs without the formula prefix (as a stage with "
    "CSV_NEUTRALIZE_FORMULAS=false writes them).",
)
@MAX_COLUMNS_OPTION
@click.option(
    "--locate-with-athena",
    is_flag=True,
    help="Find the raw objects holding matches with one Athena query, and read only "
    "those (S3 sources; --session-id, --event-id and --match on the table's columns).",
)
@click.option(
    "--athena-database",
    default=DEFAULT_DATABASE,
    show_default=True,
    help="Glue database for --locate-with-athena.",
)
@click.option(
    "--athena-table",
    default=DEFAULT_TABLE,
    show_default=True,
    help="Glue table for --locate-with-athena.",
)
@click.option(
    "--athena-workgroup",
    default=DEFAULT_WORKGROUP,
    show_default=True,
    help="Athena workgroup for --locate-with-athena.",
)
@click.option(
    "--athena-output-location",
    metavar="S3_URI",
    help="s3://bucket/prefix/ for the query's result, if the workgroup sets none.",
)
def erase_command(
    session_ids: tuple[str, ...],
    event_ids: tuple[str, ...],
    matches: tuple[str, ...],
    date_: str,
    to_date: str | None,
    source: str,
    dry_run: bool,
    jobs: int | None,
    endpoint_url: str | None,
    region: str | None,
    no_neutralize: bool,
    max_columns: int,
    locate_with_athena: bool,
    athena_database: str,
    athena_table: str,
    athena_workgroup: str,
    athena_output_location: str | None,
) -> None:
    """Erase matching events from raw/ and rejected/, rebuild their CSVs, keep an audit record.

    Rewrites only the objects holding matches (older S3 versions are deleted too),
    then the CSV parts and daily files made from them, and writes
    erasure/YYYY/MM/DD/<run>.json with counts, never the values. Run it again after
    an interruption: it finishes the job.
    """
    # Read one by one: the request itself says when the range ends before it starts.
    first = day_from_option(date_, "--date")
    last = day_from_option(to_date, "--to-date") if to_date else first
    try:
        request = ErasureRequest.build(
            first=first,
            last=last,
            session_ids=session_ids,
            event_ids=event_ids,
            matches=[_parse_match(m) for m in matches],
        )
    except ErasureError as exc:
        raise click.UsageError(str(exc)) from None
    is_s3 = source.startswith("s3://")
    if locate_with_athena and not is_s3:
        raise click.UsageError("--locate-with-athena needs an s3:// --source")
    count = jobs or (S3_THREADS if is_s3 else os.cpu_count() or 1)
    store, prefix = open_source(source, endpoint_url, region, max_connections=count)
    assert isinstance(store, LocalStore | S3Store)
    settings = settings_for(prefix, neutralize=not no_neutralize, max_columns=max_columns)
    layout = Layout(settings, erasure_prefix=f"{prefix}{ERASURE_PREFIX}")
    raw_keys: list[str] | None = None
    notes: list[str] = []
    if locate_with_athena:
        assert isinstance(store, S3Store)
        raw_keys = _locate(
            store,
            request,
            layout,
            notes,
            region=region,
            database=athena_database,
            table=athena_table,
            workgroup=athena_workgroup,
            output_location=athena_output_location,
        )

    def run() -> ErasureReport:
        return erase(
            store,
            request,
            layout,
            raw_keys=raw_keys,
            located_by="athena" if locate_with_athena else "scan",
            dry_run=dry_run,
            workers=Workers(count, processes=not is_s3),
            progress=progress,
        )

    report = _erasing(run)
    report.notes[:0] = notes
    echo(summary(report))


def _erasing[T](action: Callable[[], T]) -> T:
    try:
        return report_errors(action)
    except ErasureError as exc:
        raise click.ClickException(str(exc)) from None


def _locate(
    store: S3Store,
    request: ErasureRequest,
    layout: Layout,
    notes: list[str],
    *,
    region: str | None,
    database: str,
    table: str,
    workgroup: str,
    output_location: str | None,
) -> list[str]:
    def run() -> list[str]:
        with aws_errors("Athena"):
            return locate_with_athena(
                _athena_client(region),
                request,
                bucket=store.bucket,
                database=database,
                table=table,
                workgroup=workgroup or None,
                output_location=output_location,
            )

    try:
        found = _erasing(run)
    except (AthenaQueryError, ValueError) as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None
    inside = located_keys(found, layout, request)
    if len(inside) < len(set(found)):
        notes.append(
            f"Athena located {len(set(found)) - len(inside)} object(s) outside "
            f"{store.describe(layout.settings.raw_prefix)} or the range; they were not read"
        )
    return inside
