"""`python -m exporter report`: the click command over ``aggregate``, ``sections`` and ``page``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from chalicelib.config import Settings
from chalicelib.delivery.measure import measure_delivery
from chalicelib.layout import keys_for_days
from chalicelib.storage.local import LocalStore
from clitools import echo
from exporter.options import (
    JOBS_OPTION,
    day_range_options,
    days_from_options,
    default_source,
    open_source,
    progress,
    report_errors,
    source_options,
    worker_count,
)
from exporter.report.aggregate import ReportData, count_range
from exporter.report.delivery import delivery_from_report
from exporter.report.sections import DEFAULT_TOP, build_sections


def default_output(days: list[date]) -> Path:
    first, last = days[0], days[-1]
    name = first.isoformat() if first == last else f"{first.isoformat()}_{last.isoformat()}"
    return Path(f"{name}_report.html")


def write_report(data: ReportData, out: Path, top: int) -> None:
    """The page, published whole (a reader never sees half of it)."""
    from exporter.report.page import render_page  # matplotlib loads only when drawing

    html = render_page(data, build_sections(data, top))
    with LocalStore(out.parent).open_write(out.name) as handle:
        handle.write(html.encode("utf-8", "backslashreplace"))


@click.command("report")
@day_range_options
@source_options(reads="raw/ and rejected/")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write (its folder must exist). Default: ./DAY_report.html.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1, max=100),
    default=DEFAULT_TOP,
    show_default=True,
    help="Rows per ranked table (pages, referrers, …); the rest are one (other) row.",
)
@JOBS_OPTION
def report_command(
    date_: str,
    to_date: str | None,
    source: str | None,
    out: Path | None,
    top: int,
    endpoint_url: str | None,
    region: str | None,
    jobs: int | None,
) -> None:
    """Write one offline HTML page of charts of a day (or range): events, sessions,
    pages, referrers, browsers, countries, bots, rejects and delivery."""
    days = days_from_options(date_, to_date)
    source = source or default_source()
    out = out or default_output(days)
    if not out.parent.is_dir():
        raise click.BadParameter(
            f"folder {out.parent} does not exist: create it first, or write elsewhere",
            param_hint="--out",
        )
    store, prefix = open_source(source, endpoint_url, region)
    settings = Settings().under(prefix)
    raw = report_errors(lambda: keys_for_days(store, settings.raw_prefix, days))
    rejected = report_errors(lambda: keys_for_days(store, settings.rejected_prefix, days))
    if not raw and not rejected:
        first, last = days[0], days[-1]
        span = first.isoformat() if first == last else f"{first} to {last}"
        raise click.ClickException(
            f"no raw events or rejects for {span} under {store.describe(settings.raw_prefix)} "
            f"or {store.describe(settings.rejected_prefix)}"
        )
    with progress(len(raw) + len(rejected), "reading") as advance:
        data = report_errors(
            lambda: count_range(
                store,
                raw,
                rejected,
                days,
                on_source_done=advance,
                jobs=worker_count(jobs, len(raw), store),
            )
        )
    data.source = store.describe(prefix)
    if raw:
        measured = report_errors(lambda: measure_delivery(store, days, settings))
        data.delivery = delivery_from_report(measured) or data.delivery
    report_errors(lambda: write_report(data, out, top))
    rejects = data.rejects.events + data.rejects.bodies
    echo(
        f"wrote {out}: {data.events} event(s) in {data.sessions} session(s), {rejects} reject(s)\n"
        f"  from {data.raw_objects} raw object(s); {data.duplicates} duplicate(s) dropped; "
        f"{data.bad_lines} bad line(s)"
    )
