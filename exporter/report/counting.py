"""The small pieces a report counts with: bounded counters, value labels, time buckets.

Every counter here is bounded: a field holding a million distinct values (page paths
with ids in them, a hostile client's metric names) costs at most ``MAX_DISTINCT``
entries; values first seen past that are counted under ``OTHER``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chalicelib.csv.columns import json_text

NONE = "(none)"
OTHER = "(other)"
# Distinct values counted per field; later new values are counted as OTHER.
MAX_DISTINCT = 10_000
# A value longer than this is cut (with "…") before it is counted or shown.
LABEL_CHARS = 200
# Ranges up to this many days are counted per hour, longer ones per day.
MAX_HOURLY_DAYS = 3
_KEY_HOUR = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]*$")


def label(value: Any) -> str:
    """A field's value as the text a report counts and shows: ``""``/missing is
    NONE, other JSON types are their JSON text, long text is cut."""
    text: str = value if type(value) is str else ("" if value is None else json_text(value))
    if not text:
        return NONE
    if len(text) > LABEL_CHARS:
        return text[: LABEL_CHARS - 1] + "…"
    return text


@dataclass
class CappedCounter:
    """Counts per value, for at most ``max_keys`` values (the rest under OTHER)."""

    max_keys: int = MAX_DISTINCT
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, count: int = 1) -> None:
        counts = self.counts
        if key in counts:
            counts[key] += count
        elif len(counts) < self.max_keys:
            counts[key] = count
        else:
            counts[OTHER] = counts.get(OTHER, 0) + count

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def top(self, n: int) -> list[tuple[str, int]]:
        """The ``n`` largest (ties by value), then one OTHER row for all the rest."""
        ranked = sorted(
            ((key, count) for key, count in self.counts.items() if key != OTHER),
            key=lambda item: (-item[1], item[0]),
        )
        rest = sum(count for _, count in ranked[n:]) + self.counts.get(OTHER, 0)
        return ranked[:n] + ([(OTHER, rest)] if rest else [])


@dataclass(frozen=True)
class Buckets:
    """The time axis: every hour of the days (up to MAX_HOURLY_DAYS days), else every day."""

    days: tuple[date, ...]

    @property
    def hourly(self) -> bool:
        return len(self.days) <= MAX_HOURLY_DAYS

    def __len__(self) -> int:
        return len(self.days) * 24 if self.hourly else len(self.days)

    @property
    def labels(self) -> list[str]:
        if not self.hourly:
            return [day.isoformat() for day in self.days]
        if len(self.days) == 1:
            return [f"{hour:02d}:00" for hour in range(24)]
        return [f"{day:%m-%d} {hour:02d}:00" for day in self.days for hour in range(24)]

    @property
    def short_labels(self) -> list[str]:
        """For a chart's axis: "07" for an hour of one day."""
        if self.hourly and len(self.days) == 1:
            return [f"{hour:02d}" for hour in range(24)]
        return self.labels

    @property
    def axis_title(self) -> str:
        return "hour (UTC)" if self.hourly else "day"

    def day_index(self) -> dict[str, int]:
        return {day.isoformat(): index for index, day in enumerate(self.days)}

    def of_key(self, key: str) -> int:
        """The bucket of a raw object's hour folder (``…/YYYY/MM/DD/HH/name``); 0 if it
        has none or it is outside the days."""
        match = _KEY_HOUR.search(key)
        if match is None:
            return 0
        year, month, day, hour = match.groups()
        return self.of_time(f"{year}-{month}-{day}T{hour}", self.day_index(), 0)

    def of_time(self, timestamp: Any, day_index: dict[str, int], default: int) -> int:
        """The bucket of an ISO 8601 UTC time (``serverTimestamp``), or ``default`` when
        it is not one or is outside the days (a replayed event keeps its first time)."""
        if type(timestamp) is not str or len(timestamp) < 13:
            return default
        day = day_index.get(timestamp[:10])
        if day is None:
            return default
        if not self.hourly:
            return day
        hour = timestamp[11:13]
        if not hour.isdigit() or int(hour) > 23:
            return default
        return day * 24 + int(hour)
