"""What the report shows: its sections, each a chart and the table of the same numbers.

A section is data (title, table rows, the chart's SVG text); ``page.py`` turns the
sections into HTML. High-cardinality fields are cut to the top ``top`` values and
one "(other)" row holding the rest, so every table adds up to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from exporter.report import charts
from exporter.report.aggregate import ReportData
from exporter.report.counting import NONE, OTHER, CappedCounter

DEFAULT_TOP = 10
# Metric names stacked in the events chart; the rest are one grey "(other)" part.
STACKED_METRICS = 6


@dataclass(frozen=True)
class Table:
    """A section's table: the numbers its chart draws, for reading or copying."""

    headers: tuple[str, ...]
    rows: list[tuple[str | int, ...]]


@dataclass(frozen=True)
class Section:
    """One part of the report page: a title, what it shows, its chart and its table."""

    id: str
    title: str
    about: str
    table: Table
    chart: str = ""  # SVG text; "" when there is nothing to draw
    empty: str = ""  # said instead of the chart and table when there is nothing
    facts: list[str] = field(default_factory=list)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "0.0 %"


def _description(title: str) -> str:
    return f"Chart: {title}. The table with it holds the same numbers."


def _time_label(data: ReportData) -> str:
    return "Hour (UTC)" if data.buckets.hourly else "Day"


def events_over_time(data: ReportData) -> Section:
    unit = "hour" if data.buckets.hourly else "day"
    title = f"Events per {unit}, by metric name"
    labels = data.buckets.labels
    top = [name for name, _ in data.metrics.top(STACKED_METRICS) if name != OTHER]
    series = [
        (name, [data.metric_per_bucket.get((b, name), 0) for b in range(len(labels))])
        for name in top
    ]
    rest = [
        total - sum(values[b] for _, values in series) for b, total in enumerate(data.per_bucket)
    ]
    if any(rest):
        series.append((OTHER, rest))
    rows: list[tuple[str | int, ...]] = [
        (label, data.per_bucket[b], *(values[b] for _, values in series))
        for b, label in enumerate(labels)
    ]
    table = Table((_time_label(data), "Events", *(name for name, _ in series)), rows)
    about = (
        f"Stored events after the dedupe, by the hour of serverTimestamp (UTC), stacked by "
        f"the {len(top)} most frequent metric names; the others are grey."
    )
    if not data.events:
        return Section("events-per-hour", title, about, table, empty="No stored events.")
    buckets = data.buckets
    chart = charts.stacked_bars(
        "events-per-hour",
        buckets.short_labels,
        buckets.axis_title,
        series,
        _description(title),
        OTHER,
    )
    return Section("events-per-hour", title, about, table, chart)


def sessions_over_time(data: ReportData) -> Section:
    unit = "hour" if data.buckets.hourly else "day"
    title = f"Sessions per {unit}"
    labels = data.buckets.labels
    table = Table(
        (_time_label(data), "Sessions"),
        [(label, data.sessions_per_bucket[b]) for b, label in enumerate(labels)],
    )
    about = (
        f"Distinct sessionId values with an event in the {unit} (a session can count in several)."
    )
    if not data.sessions:
        return Section("sessions-per-hour", title, about, table, empty="No sessions.")
    buckets = data.buckets
    chart = charts.bars(
        "sessions-per-hour",
        buckets.short_labels,
        buckets.axis_title,
        data.sessions_per_bucket,
        _description(title),
    )
    return Section("sessions-per-hour", title, about, table, chart)


def ranked(
    section_id: str,
    title: str,
    about: str,
    counter: CappedCounter,
    headers: tuple[str, str],
    top: int,
    empty: str,
) -> Section:
    """Top ``top`` values of a field, an "(other)" row for the rest, and their share."""
    rows = counter.top(top)
    whole = sum(count for _, count in rows)
    table = Table(
        (*headers, "Share"), [(name, count, percent(count, whole)) for name, count in rows]
    )
    if not whole:
        return Section(section_id, title, about, table, empty=empty)
    chart = charts.horizontal_bars(section_id, rows, _description(title), OTHER)
    return Section(section_id, title, about, table, chart)


def bot_share(data: ReportData) -> Section:
    title = f"Bots: {percent(data.bots, data.events)} of events"
    people = data.events - data.bots
    if data.has_bot_reason:
        reasons = [
            (f"bot: {'no reason given' if name == NONE else name}", count)
            for name, count in data.bot_reasons.top(8)
        ]
        about = "Events by isBot; bots by botReason, the reason the server gave."
    else:
        reasons = [("bot", data.bots)] if data.bots else []
        about = "Events by isBot (the records carry no botReason)."
    rows = [("people", people), *reasons]
    table = Table(
        ("Kind", "Events", "Share"),
        [(name, count, percent(count, data.events)) for name, count in rows],
    )
    if not data.events:
        return Section("bots", title, about, table, empty="No stored events.")
    return Section(
        "bots", title, about, table, charts.horizontal_bars("bots", rows, _description(title))
    )


def rejects(data: ReportData, top: int) -> Section:
    summary = data.rejects
    total = summary.events + summary.bodies
    section = ranked(
        "rejects",
        f"Rejects by reason: {total:,}",
        "What the route refused (from rejected/): events by the reason given, "
        "bodies refused whole included.",
        data.reject_reasons(),
        ("Reason", "Rejected"),
        top,
        "Nothing was rejected.",
    )
    section.facts.extend(
        [
            f"{summary.events:,} rejected event(s); {summary.bodies:,} request bod(ies) "
            "refused whole",
            f"{summary.unreadable:,} unreadable line(s) in {data.reject_objects:,} object(s) "
            "under rejected/",
        ]
    )
    return section


def delivery(data: ReportData) -> Section:
    found = data.delivery
    about = (
        "The events browsers numbered (seq) that were stored, out of every number from 1 "
        "to each session's highest, as exporter delivery counts them: a number missing "
        "inside a session or just before its last send."
    )
    if found is None:
        return Section(
            "delivery",
            "Delivery rate",
            about,
            Table(("Delivery per session", "Sessions"), []),
            empty="No stored event carries seq, so there is no delivery rate to show.",
        )
    title = f"Delivery rate: {100 * found.rate:.1f} %"
    rows = list(found.bands)
    table = Table((found.label, found.unit), [(name, n) for name, n in rows])
    chart = charts.horizontal_bars("delivery", rows, _description(title))
    facts = [f"{found.received:,} of {found.expected:,} numbered events stored"]
    return Section("delivery", title, about, table, chart, facts=facts)


def build_sections(data: ReportData, top: int = DEFAULT_TOP) -> list[Section]:
    field_ = data.by_field
    return [
        events_over_time(data),
        sessions_over_time(data),
        ranked(
            "pages",
            "Top pages",
            "Events by pagePath.",
            field_["pagePath"],
            ("Page", "Events"),
            top,
            "No events.",
        ),
        ranked(
            "referrers",
            "Referrers",
            "Sessions by landing referrer (another site's page the session came from).",
            field_["referrer"],
            ("Referrer", "Sessions"),
            top,
            "No sessions.",
        ),
        ranked(
            "utm-sources",
            "UTM sources",
            "Sessions by utm_source of their landing page.",
            field_["utm_source"],
            ("utm_source", "Sessions"),
            top,
            "No sessions.",
        ),
        ranked(
            "browsers",
            "Browsers",
            "Events by uaBrowser.",
            field_["uaBrowser"],
            ("Browser", "Events"),
            top,
            "No events.",
        ),
        ranked(
            "os",
            "Operating systems",
            "Events by uaOs.",
            field_["uaOs"],
            ("OS", "Events"),
            top,
            "No events.",
        ),
        ranked(
            "devices",
            "Device types",
            "Events by uaDeviceType.",
            field_["uaDeviceType"],
            ("Device type", "Events"),
            top,
            "No events.",
        ),
        ranked(
            "countries",
            "Countries",
            "Events by country (CloudFront-Viewer-Country; (none) without it).",
            field_["country"],
            ("Country", "Events"),
            top,
            "No events.",
        ),
        bot_share(data),
        rejects(data, top),
        delivery(data),
    ]
