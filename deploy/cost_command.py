"""The `cost` command: the monthly bill of the model in ``deploy/cost.py``, as a table or JSON."""

from __future__ import annotations

import json

import click

from clitools import echo
from deploy.cost import CostBreakdown, monthly_cost
from deploy.prices import PRICES_CHECKED, REGION


def format_table(breakdown: CostBreakdown) -> str:
    """A plain-text table of the breakdown, per line and per service, with the total."""
    rows = [("Service", "Item", "Quantity", "USD/month")]
    for line in breakdown.lines:
        quantity = (
            f"{line.quantity:,.0f} {line.unit}"
            if line.quantity >= 100 or line.quantity == int(line.quantity)
            else f"{line.quantity:,.3f} {line.unit}"
        )
        rows.append((line.service, line.item, quantity, f"{line.usd:,.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]

    def render(row: tuple[str, str, str, str]) -> str:
        return "  ".join(
            (cell.rjust(widths[i]) if i >= 2 else cell.ljust(widths[i]))
            for i, cell in enumerate(row)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [
        f"{breakdown.events_per_month:,} events/month, {breakdown.events_per_request} per request, "
        f"{breakdown.events_per_record} per Firehose record, {breakdown.event_bytes} bytes each "
        f"({REGION} on-demand prices checked {PRICES_CHECKED}; free tiers ignored)",
        "",
        render(rows[0]),
        rule,
        *(render(r) for r in rows[1:]),
        rule,
    ]
    for service, usd in breakdown.by_service().items():
        out.append(render((service, "subtotal", "", f"{usd:,.2f}")))
    out.append(render(("Total", "", "", f"{breakdown.total:,.2f}")))
    return "\n".join(out)


@click.command("cost")
@click.option(
    "--events-per-month",
    type=click.IntRange(min=0),
    default=10_000_000,
    show_default=True,
    help="Events tracked per month.",
)
@click.option(
    "--events-per-request",
    type=click.IntRange(min=1),
    default=25,
    show_default=True,
    help="Events the client batches into one POST (its batchSize).",
)
@click.option(
    "--events-per-record",
    type=click.IntRange(min=1),
    default=None,
    help="Events per Firehose record [default: all of a request's events in one record].",
)
@click.option(
    "--one-record-per-event",
    is_flag=True,
    help="Send each event as its own Firehose record (each billed as at least 5 KB).",
)
@click.option(
    "--event-bytes",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="Size of one stored event record in bytes.",
)
@click.option(
    "--gzip-ratio",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.15,
    show_default=True,
    help="Compressed/uncompressed size of raw objects in S3.",
)
@click.option(
    "--storage-months",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Months a month's data is stored (steady state: the retention).",
)
@click.option(
    "--rejected-share",
    type=click.FloatRange(min=0, max=1),
    default=0.0,
    show_default=True,
    help="Share of events the API rejects (kept in the rejects stream), e.g. 0.01.",
)
@click.option(
    "--athena-threshold-bytes",
    type=click.IntRange(min=0),
    default=None,
    help="Build days of at least this many gzip bytes on Athena (prod: 268435456).",
)
@click.option("--parquet-daily", is_flag=True, help="Add the daily Parquet copy (prod: on).")
@click.option("--json", "as_json", is_flag=True, help="Print the breakdown as JSON.")
def cost(
    events_per_month: int,
    events_per_request: int,
    events_per_record: int | None,
    one_record_per_event: bool,
    event_bytes: int,
    gzip_ratio: float,
    storage_months: float,
    rejected_share: float,
    athena_threshold_bytes: int | None,
    parquet_daily: bool,
    as_json: bool,
) -> None:
    """Estimate the monthly AWS bill for a number of events, per service."""
    if one_record_per_event and events_per_record not in (None, 1):
        raise click.UsageError("--one-record-per-event contradicts --events-per-record")
    try:
        breakdown = monthly_cost(
            events_per_month,
            events_per_request=events_per_request,
            events_per_record=1 if one_record_per_event else events_per_record,
            event_bytes=event_bytes,
            gzip_ratio=gzip_ratio,
            storage_months=storage_months,
            rejected_share=rejected_share,
            athena_threshold_bytes=athena_threshold_bytes,
            parquet_daily=parquet_daily,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        echo(json.dumps(breakdown.to_dict(), indent=2))
    else:
        echo(format_table(breakdown))
