"""Stored rejects read back: counted by reason and metricName, or flattened into CSV rows.

Rejects sit under ``rejected/YYYY/MM/DD/HH/`` (gzip from the rejects Firehose stream,
plain NDJSON from the local sink), one record per rejected event or refused body in
the format of :mod:`chalicelib.rejects.record`. Reading streams them object by object, so
memory stays bounded by the number of distinct (reason, metricName) groups, which is
capped too: past ``MAX_GROUPS`` the rest are counted under one "(other)" group.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from chalicelib.csv.columns import format_cell, json_text
from chalicelib.csv.read import BadLine, iter_json_objects
from chalicelib.ingest.messages import shown
from chalicelib.rejects.record import (
    CONTEXT,
    EVENT,
    EVENT_TEXT,
    REASON,
    is_body_record,
    kept_event_text,
)
from chalicelib.storage.base import ObjectStore

# The metricName shown for a body refused whole, and for an event whose name is unknown.
BODY = "(body)"
NO_METRIC = "(none)"
CUT_EVENT_METRIC = "(event cut)"
OTHER = "(other)"
MAX_GROUPS = 10_000
METRIC_CHARS = 128
# The columns of `python -m exporter rejected --csv`: both record kinds in one table.
CSV_COLUMNS = (
    "receivedAt",
    "requestId",
    "reason",
    "status",
    "schemaVersion",
    "index",
    "metricName",
    "sentAt",
    "event",
    "eventTruncated",
    "context",
    "contentType",
    "bodyBytes",
    "bodyEncoding",
    "body",
)


def iter_records(
    store: ObjectStore, keys: Iterable[str], on_bad_line: Callable[[BadLine], None]
) -> Iterator[dict[str, Any]]:
    """Every JSON object of the objects at ``keys``; anything else goes to ``on_bad_line``."""
    for key in keys:
        with store.open_read(key) as stream:
            for line_number, value, _ in iter_json_objects(stream, key):
                if isinstance(value, BadLine):
                    on_bad_line(value)
                elif not isinstance(value, dict):
                    on_bad_line(BadLine(key, line_number, "not a reject record", ""))
                else:
                    yield value


def metric_name(record: dict[str, Any]) -> str:
    if is_body_record(record):
        return BODY
    event = record.get(EVENT)
    if isinstance(event, dict) and isinstance(event.get("metricName"), str):
        return shown(event["metricName"], METRIC_CHARS)
    return CUT_EVENT_METRIC if EVENT_TEXT in record else NO_METRIC


@dataclass
class RejectSummary:
    """Counts of stored rejects: events, bodies, unreadable lines, and per group."""

    max_groups: int = MAX_GROUPS
    events: int = 0
    bodies: int = 0
    unreadable: int = 0
    groups: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> None:
        if is_body_record(record):
            self.bodies += 1
        else:
            self.events += 1
        group = (shown(record.get(REASON, ""), 400), metric_name(record))
        if group not in self.groups and len(self.groups) >= self.max_groups:
            group = (OTHER, OTHER)
        self.groups[group] = self.groups.get(group, 0) + 1

    def add_bad_line(self, _bad: BadLine) -> None:
        self.unreadable += 1

    def ranked(self) -> list[tuple[int, str, str]]:
        """(count, reason, metricName), the largest first."""
        return sorted(
            ((count, reason, metric) for (reason, metric), count in self.groups.items()),
            key=lambda row: (-row[0], row[1], row[2]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "bodies": self.bodies,
            "unreadable": self.unreadable,
            "groups": [
                {"count": count, "reason": reason, "metricName": metric}
                for count, reason, metric in self.ranked()
            ],
        }


def reject_csv_row(record: dict[str, Any]) -> list[str]:
    """One record as CSV cells: the event and context as JSON text, formulas neutralised."""
    values = dict(record)
    values["metricName"] = metric_name(record)
    event_text = kept_event_text(record, json_text)
    if event_text is not None:
        values[EVENT] = event_text
    if CONTEXT in record:
        values[CONTEXT] = json_text(record[CONTEXT])
    return [format_cell(values.get(column), True) for column in CSV_COLUMNS]


class CsvRecords:
    """Writes records as CSV rows to a binary handle (UTF-8, header first)."""

    def __init__(self, handle: BinaryIO) -> None:
        # backslashreplace: a lone surrogate an event held is written as its escape.
        self._text = io.TextIOWrapper(
            handle, encoding="utf-8", errors="backslashreplace", newline="", write_through=True
        )
        self._writer = csv.writer(self._text)
        self._writer.writerow(CSV_COLUMNS)
        self.rows = 0

    def add(self, record: dict[str, Any]) -> None:
        self._writer.writerow(reject_csv_row(record))
        self.rows += 1

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the handle belongs to the caller
