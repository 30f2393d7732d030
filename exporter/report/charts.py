"""Charts as inline SVG text, drawn by matplotlib's SVG backend.

Why matplotlib: it is the most widely used and maintained plotting library in
Python, its SVG backend writes a static picture (no script, no font or style
fetched from anywhere) that is inlined into the page as it is, prints sharply at any
size, and with ``svg.fonttype = none`` keeps labels as ``<text>`` (so they can be
searched and copied). Labels are XML-escaped by the backend; math parsing is off,
so a ``$`` in a page path is a dollar sign. Only ``Figure`` is used (no pyplot): no
GUI backend, no global state.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator


# matplotlib (about 45 MB with numpy) loads when a chart is drawn, not when a command
# line merely registers `report`: every other exporter command stays as small as before.
def rc_context(style: Any) -> AbstractContextManager[object]:
    from matplotlib import rc_context as context

    return context(style)


def _integer_locator() -> MaxNLocator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


# Colour-blind-safe (Okabe-Ito), then grey for "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER_COLOUR = "#999999"
CHART_LABEL_CHARS = 48
# Time charts span the page; ranked bars share a row with their table.
WIDE_INCHES = 12.0
WIDTH_INCHES = 6.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
}


def printable(text: str) -> str:
    """Control characters (a newline in a page path) as visible escapes."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _short(text: str) -> str:
    text = printable(text)
    return text if len(text) <= CHART_LABEL_CHARS else text[: CHART_LABEL_CHARS - 1] + "…"


def _svg(figure: Figure, chart_id: str, description: str) -> str:
    buffer = io.StringIO()
    # A salt per chart keeps the ids of clip paths and tick marks unique in the page.
    with rc_context({**_STYLE, "svg.hashsalt": chart_id}):
        figure.savefig(
            buffer, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.05
        )
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    aria = description.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{aria}" ', 1)


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    # No layout engine: bbox_inches="tight" fits the labels at a third of the cost.
    with rc_context(_STYLE):
        from matplotlib.figure import Figure

        figure = Figure(figsize=(width, height))
        axes = figure.subplots()
    return figure, axes


def _time_axis(axes: Axes, labels: Sequence[str], title: str) -> None:
    """At most about 24 labels; rotated when they are longer than an hour's "07"."""
    step = max(1, -(-len(labels) // 24))
    positions = list(range(0, len(labels), step))
    axes.set_xticks(positions, [labels[p] for p in positions])
    if any(len(label) > 2 for label in labels):
        axes.tick_params(axis="x", labelrotation=90)
    axes.set_xlabel(title)
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.yaxis.set_major_locator(_integer_locator())
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)


def stacked_bars(
    chart_id: str,
    labels: Sequence[str],
    axis_title: str,
    series: Sequence[tuple[str, Sequence[int]]],
    description: str,
    other: str = "",
) -> str:
    """Vertical bars over time, one stacked part per series (``other`` in grey)."""
    with rc_context(_STYLE):
        figure, axes = _figure(WIDE_INCHES, 3.0)
        bottoms = [0] * len(labels)
        for index, (name, values) in enumerate(series):
            colour = OTHER_COLOUR if name == other else PALETTE[index % len(PALETTE)]
            axes.bar(
                range(len(labels)),
                values,
                bottom=bottoms,
                color=colour,
                label=_short(name),
                width=0.8,
            )
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        _time_axis(axes, labels, axis_title)
        if series:
            axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        return _svg(figure, chart_id, description)


def bars(
    chart_id: str, labels: Sequence[str], axis_title: str, values: Sequence[int], description: str
) -> str:
    """Vertical bars over time, one colour."""
    with rc_context(_STYLE):
        figure, axes = _figure(WIDE_INCHES, 2.4)
        axes.bar(range(len(labels)), values, color=PALETTE[0], width=0.8)
        _time_axis(axes, labels, axis_title)
        return _svg(figure, chart_id, description)


def horizontal_bars(
    chart_id: str, rows: Sequence[tuple[str, int]], description: str, other: str = ""
) -> str:
    """One bar per row, the first at the top, its count at its end (``other`` in grey)."""
    with rc_context(_STYLE):
        figure, axes = _figure(WIDTH_INCHES, 0.5 + 0.26 * max(1, len(rows)))
        names = [_short(name) for name, _ in rows]
        counts = [count for _, count in rows]
        colours = [OTHER_COLOUR if name == other else PALETTE[0] for name, _ in rows]
        positions = list(range(len(rows)))
        bars_drawn = axes.barh(positions, counts, color=colours, height=0.7)
        axes.set_yticks(positions, names)
        axes.invert_yaxis()
        axes.bar_label(bars_drawn, labels=[f"{c:,}" for c in counts], padding=3, fontsize=8)
        axes.xaxis.set_major_locator(_integer_locator())
        axes.margins(x=0.12)
        axes.grid(axis="x", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        return _svg(figure, chart_id, description)
