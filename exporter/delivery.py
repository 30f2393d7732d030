"""`python -m exporter delivery`: per day, the share of numbered events that arrived.

A thin layer over ``chalicelib.delivery.measure.measure_delivery``: options in, the report out
as text or as one JSON object.
"""

from __future__ import annotations

import json
import sqlite3

import click

from chalicelib.config import Settings
from chalicelib.delivery.measure import (
    DayDelivery,
    DeliveryCounts,
    DeliveryReport,
    measure_delivery,
)
from clitools import echo
from exporter.options import (
    day_range_options,
    days_from_options,
    default_source,
    open_source,
    report_errors,
    source_options,
)


def percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.2f} %"


def _counts_line(counts: DeliveryCounts) -> str:
    return (
        f"{counts.sessions} sessions, {counts.received} received, {counts.gaps} gaps "
        f"({counts.gaps_inside} inside, {counts.gaps_at_end} at the end), "
        f"{counts.duplicates} duplicates, rate {percent(counts.rate)}"
    )


def _day_lines(day: DayDelivery) -> list[str]:
    lines = [f"{day.day.isoformat()}: {_counts_line(day.total)}"]
    if day.total.unnumbered:
        lines.append(f"  {day.total.unnumbered} events without seq (not counted in the rate)")
    for title, slices in (("browser", day.by_browser), ("device type", day.by_device_type)):
        for name in sorted(name for name in slices if slices[name].sessions):
            lines.append(f"  {title} {name or '(unknown)'}: {_counts_line(slices[name])}")
    for run in day.gap_runs:
        numbers = str(run.first) if run.first == run.last else f"{run.first}-{run.last}"
        where = "at the end" if run.at_end else "inside"
        lines.append(f"  gap {run.session_id} seq {numbers} ({where})")
    if day.gap_runs_total > len(day.gap_runs):
        lines.append(f"  … {day.gap_runs_total - len(day.gap_runs)} more gap runs")
    return lines


def report_text(report: DeliveryReport) -> str:
    lines: list[str] = []
    for day in report.days:
        lines += _day_lines(day)
    if len(report.days) > 1:
        lines.append(f"all days: {_counts_line(report.total)}")
    lines.append(f"read {report.sources} raw object(s); {report.bad_lines} bad line(s)")
    return "\n".join(lines)


@click.command("delivery")
@day_range_options
@source_options()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def delivery_command(
    date_: str,
    to_date: str | None,
    source: str | None,
    endpoint_url: str | None,
    region: str | None,
    as_json: bool,
) -> None:
    """Per day: sessions, events received, sequence gaps, duplicates and the delivery rate."""
    days = days_from_options(date_, to_date)
    store, prefix = open_source(source or default_source(), endpoint_url, region)
    try:
        report = report_errors(lambda: measure_delivery(store, days, Settings().under(prefix)))
    except sqlite3.Error as exc:  # the temporary folder is full or unwritable
        raise click.ClickException(f"the report's temporary database failed: {exc}") from None
    if as_json:
        echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        echo(report_text(report))
