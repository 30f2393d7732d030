"""Delivery rate from the client's per-session ``seq``: how many of the events a session
numbered reached the store.

One small function on purpose: a delivery library built on the same ``seq`` field
replaces ``delivery_of`` without touching the rest of the report. Until then this is
the rule: a session that sent ``seq`` numbers from ``low`` to ``high`` is expected to
have ``high - low + 1`` events in the range read (so a session that began the day
before is not counted as losing yesterday's events), and each of its events counts
once after the export's dedupe. Events lost after a session's last stored one cannot
be seen this way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalicelib.delivery.measure import DeliveryReport

# Per-session delivery bands, the best first: (label, lowest rate in the band).
BANDS = (("100 %", 1.0), ("90-99 %", 0.9), ("50-89 %", 0.5), ("under 50 %", 0.0))


@dataclass(frozen=True)
class Delivery:
    """Delivery of numbered events as the report shows it: expected, received, by band."""

    sessions: int
    expected: int
    received: int
    bands: tuple[tuple[str, int], ...]
    # What the rows count: sessions per band (the report's own reading) or numbered
    # events by fate (exporter delivery's reading).
    unit: str = "Sessions"
    label: str = "Delivery per session"

    @property
    def rate(self) -> float:
        return self.received / self.expected if self.expected else 1.0


def delivery_of(sessions: Iterable[tuple[int, int, int]]) -> Delivery | None:
    """``(lowest seq, highest seq, events stored)`` per session that carries ``seq`` →
    the delivery over all of them, and how many sessions fall in each band; None
    when no session carries ``seq``."""
    count = expected = received = 0
    in_band = [0] * len(BANDS)
    for low, high, stored in sessions:
        span = high - low + 1
        got = min(stored, span)  # more events than numbers: repeats the dedupe kept
        count += 1
        expected += span
        received += got
        rate = got / span
        in_band[next(i for i, (_, floor) in enumerate(BANDS) if rate >= floor)] += 1
    if not count:
        return None
    bands = tuple((name, n) for (name, _), n in zip(BANDS, in_band, strict=True))
    return Delivery(count, expected, received, bands)


def delivery_from_report(report: DeliveryReport) -> Delivery | None:
    """``exporter delivery``'s reading of the same days (``chalicelib.delivery.measure``: gaps from
    1 to the highest number, placed inside a session or at its end), as the report's
    section shows it; None when no event of the range carries ``seq``."""
    total = report.total
    if total.rate is None:
        return None
    rows = (
        ("stored", total.received),
        ("missing inside a session", total.gaps_inside),
        ("missing at a session's end", total.gaps_at_end),
    )
    return Delivery(
        total.sessions,
        total.received + total.gaps,
        total.received,
        rows,
        unit="Numbered events",
        label="What became of them",
    )
