"""The day's delivery counts as one Athena query: what ``chalicelib.delivery.measure`` logs for a
day the Lambda builds, for days past one Lambda.

The same rules as the report (docs/SPEC.md, "Delivery"): records of the day and of the
hour either side, one event per (``sessionId``, ``seq``, ``eventId``) with its first
arrival, a session counted on the day of its first record, gaps between 1 and the
highest number, the run just above the highest number that arrived before the final
send counted at the end. One row: the day's totals, named as the log line's keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from chalicelib.athena.sql import MAP_TYPE, as_date, json_format_sql, quote_literal, table_ref

# The log line's counts, in the query's column order.
DELIVERY_COLUMNS = (
    "sessions",
    "received",
    "gaps",
    "gapsInside",
    "gapsAtEnd",
    "duplicates",
    "unnumbered",
    "sessionsWithGaps",
    "sessionsWithEndGaps",
)
# A seq the report counts: an integer from 1 to 2^53 (9007199254740992), written as digits.
_SEQ_DIGITS = "^[1-9][0-9]{0,15}$"
_MAX_SEQ = 2**53


def _hour_predicate(day: dt.date, hour: str | None) -> str:
    parts = [
        f'"year" = {quote_literal(f"{day:%Y}")}',
        f'"month" = {quote_literal(f"{day:%m}")}',
        f'"day" = {quote_literal(f"{day:%d}")}',
    ]
    if hour is not None:
        parts.append(f'"hour" = {quote_literal(hour)}')
    return "(" + " AND ".join(parts) + ")"


def build_delivery_query(database: str, table: str, day: dt.date | str) -> str:
    """One row: the day's ``DELIVERY_COLUMNS``."""
    d = as_date(day)
    where = " OR ".join(
        [
            _hour_predicate(d - dt.timedelta(days=1), "23"),
            _hour_predicate(d, None),
            _hour_predicate(d + dt.timedelta(days=1), "00"),
        ]
    )
    field = "element_at(m, {})".format
    session, seq, event, arrived = (
        json_format_sql(field(quote_literal(name)))
        for name in ("sessionId", "seq", "eventId", "serverTimestamp")
    )
    return f"""
WITH parsed AS (
    SELECT TRY(CAST(json_parse(line) AS {MAP_TYPE})) AS m,
           "year" || '-' || "month" || '-' || "day" AS arrival_day
    FROM {table_ref(database, table)}
    WHERE {where}
),
records AS (
    SELECT json_extract_scalar({field(quote_literal("sessionId"))}, '$') AS session,
           IF(regexp_like(COALESCE({seq}, ''), '{_SEQ_DIGITS}')
              AND TRY_CAST({seq} AS BIGINT) <= {_MAX_SEQ}, TRY_CAST({seq} AS BIGINT)) AS seq,
           IF({event} IS NULL OR {event} = 'null', 'unnamed:' || CAST(uuid() AS VARCHAR),
              {event}) AS event,
           IF(length(COALESCE({arrived}, '')) = 26 AND substr({arrived}, 1, 1) = '"',
              {arrived}, '') AS arrived,
           arrival_day
    FROM parsed
    WHERE m IS NOT NULL AND substr(COALESCE({session}, ''), 1, 1) = '"'
),
events AS (
    SELECT session, seq, MIN(arrived) AS arrived, MIN(arrival_day) AS arrival_day,
           COUNT(*) - 1 AS copies
    FROM records GROUP BY session, seq, event
),
finals AS (
    SELECT session, MIN(arrival_day) AS first_day, MAX(seq) AS top,
           COUNT(seq) AS received, COUNT(DISTINCT seq) AS numbers,
           COUNT(*) - COUNT(seq) AS unnumbered, SUM(copies) AS duplicates,
           MAX(IF(seq IS NOT NULL, arrived)) AS final_arrival
    FROM events GROUP BY session
),
befores AS (
    SELECT e.session, COALESCE(MAX(IF(e.arrived < f.final_arrival, e.seq)), 0) AS before_final
    FROM events e JOIN finals f ON e.session = f.session
    WHERE e.seq IS NOT NULL GROUP BY e.session
),
sessions AS (
    SELECT f.session, f.first_day, f.received, f.unnumbered, f.duplicates,
           COALESCE(f.top - f.numbers, 0) AS gaps,
           COALESCE(MIN(IF(e.seq > b.before_final, e.seq)) - b.before_final - 1, 0) AS at_end
    FROM finals f
    LEFT JOIN befores b ON f.session = b.session
    LEFT JOIN events e ON e.session = f.session AND e.seq IS NOT NULL
    GROUP BY f.session, f.first_day, f.received, f.unnumbered, f.duplicates, f.top, f.numbers,
             b.before_final
)
SELECT COALESCE(COUNT_IF(received > 0), 0) AS sessions,
       COALESCE(SUM(received), 0) AS received,
       COALESCE(SUM(gaps), 0) AS gaps,
       COALESCE(SUM(gaps - at_end), 0) AS "gapsInside",
       COALESCE(SUM(at_end), 0) AS "gapsAtEnd",
       COALESCE(SUM(duplicates), 0) AS duplicates,
       COALESCE(SUM(unnumbered), 0) AS unnumbered,
       COALESCE(COUNT_IF(gaps > 0), 0) AS "sessionsWithGaps",
       COALESCE(COUNT_IF(at_end > 0), 0) AS "sessionsWithEndGaps"
FROM sessions
WHERE first_day = {quote_literal(d.isoformat())}
""".strip()


def delivery_log_record(day: dt.date | str, row: list[Any]) -> dict[str, Any]:
    """The query's row as the daily log line ``chalicelib.delivery.measure`` writes."""
    counts = dict(zip(DELIVERY_COLUMNS, (int(value) for value in row), strict=True))
    expected = counts["received"] + counts["gaps"]
    record: dict[str, Any] = {"event": "delivery", "date": as_date(day).isoformat(), **counts}
    if expected:
        record["rate"] = round(counts["received"] / expected, 6)
    return record
