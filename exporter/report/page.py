"""The report as one self-contained HTML page: inline CSS and SVG, no script, no URL.

Every value from the data is escaped here (``html.escape``) and its control
characters made visible, so a ``<script>`` in a page path is shown as text. The
page's Content-Security-Policy forbids every fetch and every script as a second
line: were something to slip through, the browser would refuse it (and say so in
its console) rather than load or run it.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from exporter.report.aggregate import ReportData
from exporter.report.charts import printable
from exporter.report.sections import Section, Table, percent

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
:root { color-scheme: light; --ink: #1b1f24; --muted: #5b636d; --line: #d8dde3; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: #f5f6f8; }
main { max-width: 76rem; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 0 0 .2rem; }
p.meta, p.about, ul.facts { color: var(--muted); margin: .1rem 0 .6rem; }
ul.facts { padding-left: 1.2rem; }
dl.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(8.5rem, 1fr));
  gap: .6rem; margin: 1rem 0 1.5rem; }
dl.summary div { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: .5rem .75rem; }
dl.summary dt { color: var(--muted); font-size: .8rem; }
dl.summary dd { margin: 0; font-size: 1.25rem; font-weight: 600; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: 1rem 1.1rem; margin: 0 0 1.1rem; }
.body { display: grid; gap: 1rem; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
  align-items: start; }
section.wide .body { grid-template-columns: minmax(0, 1fr); }
@media (max-width: 60rem) { .body { grid-template-columns: minmax(0, 1fr); } }
figure { margin: 0; }
figure svg { width: 100%; height: auto; display: block; }
.table { overflow-x: auto; }
section.wide .table { max-height: 13rem; overflow-y: auto; }
table { border-collapse: collapse; font-size: .85rem; width: 100%; }
th, td { text-align: left; padding: .2rem .5rem; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: #f0f2f5; position: sticky; top: 0; }
td { overflow-wrap: anywhere; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.empty { font-style: italic; color: var(--muted); }
footer { color: var(--muted); font-size: .8rem; }
@media print {
  @page { margin: 12mm; }
  body { background: #fff; font-size: 11px; }
  main { max-width: none; padding: 0; }
  section, dl.summary div { border: 0; padding: 0; }
  section { break-inside: avoid; margin-bottom: 6mm; }
  .body { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
  section.wide .body { grid-template-columns: minmax(0, 1fr); }
  section.wide .table { max-height: none; overflow: visible; }
  th { position: static; }
}
"""

SHARE = re.compile(r"\d+\.\d %")  # a share cell ("12.5 %"), right-aligned like numbers
# Sections whose table has one row per hour: the table goes under the chart.
WIDE = frozenset({"events-per-hour", "sessions-per-hour"})


def text(value: object) -> str:
    """Any value as HTML text: escaped, control characters shown as escapes."""
    return html.escape(printable(str(value)), quote=True)


def _cell(value: str | int, header: bool = False) -> str:
    tag = "th" if header else "td"
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<{tag} class="n">{value:,}</{tag}>'
    if isinstance(value, str) and SHARE.fullmatch(value):
        return f'<{tag} class="n">{text(value)}</{tag}>'
    return f"<{tag}>{text(value)}</{tag}>"


def render_table(section_id: str, title: str, table: Table) -> str:
    headers = "".join(
        f'<th scope="col"{' class="n"' if index else ""}>{text(name)}</th>'
        for index, name in enumerate(table.headers)
    )
    rows = "\n".join(
        "<tr>" + "".join(_cell(value) for value in row) + "</tr>" for row in table.rows
    )
    return (
        f'<div class="table"><table id="{section_id}-table">'
        f'<caption class="visually-hidden">{text(title)}: the numbers</caption>'
        f"<thead><tr>{headers}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>"
    )


def render_section(section: Section) -> str:
    wide = " wide" if section.id in WIDE else ""
    parts = [
        f'<section id="{section.id}" class="chart{wide}" aria-labelledby="{section.id}-title">',
        f'<h2 id="{section.id}-title">{text(section.title)}</h2>',
        f'<p class="about">{text(section.about)}</p>',
    ]
    if section.facts:
        parts.append(
            '<ul class="facts">' + "".join(f"<li>{text(f)}</li>" for f in section.facts) + "</ul>"
        )
    if section.empty:
        parts.append(f'<p class="empty">{text(section.empty)}</p>')
    else:
        parts.append(
            f'<div class="body"><figure id="{section.id}-chart">{section.chart}</figure>'
            f"{render_table(section.id, section.title, section.table)}</div>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _span(data: ReportData) -> str:
    first, last = data.days[0], data.days[-1]
    return first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"


def _summary(data: ReportData) -> str:
    rejected = data.rejects.events + data.rejects.bodies
    items = [
        ("Events", f"{data.events:,}"),
        ("Sessions", f"{data.sessions:,}"),
        ("Bots", percent(data.bots, data.events)),
        ("Rejected", f"{rejected:,}"),
        ("Duplicates dropped", f"{data.duplicates:,}"),
        ("Bad lines", f"{data.bad_lines:,}"),
    ]
    if data.delivery is not None:
        items.append(("Delivery", f"{100 * data.delivery.rate:.1f} %"))
    cells = "".join(
        f"<div><dt>{text(name)}</dt><dd>{text(value)}</dd></div>" for name, value in items
    )
    return f'<dl class="summary" id="summary">{cells}</dl>'


def render_page(data: ReportData, sections: list[Section], made_at: datetime | None = None) -> str:
    made = (made_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    span = _span(data)
    body = "\n".join(render_section(section) for section in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Analytics report {text(span)}</title>
<style>{STYLE}.visually-hidden {{ position: absolute; width: 1px; height: 1px;
  overflow: hidden; clip-path: inset(50%); white-space: nowrap; }}</style>
</head>
<body>
<main>
<header>
<h1>Analytics report: {text(span)}</h1>
<p class="meta">From {text(data.source)}: {data.raw_objects:,} raw object(s),
{data.reject_objects:,} reject object(s). Made {made} by <code>python -m exporter report</code>.</p>
</header>
{_summary(data)}
{body}
<footer><p>Counts are of stored events after the export's dedupe (one per sessionId and
eventId). Tables list the top values and one (other) row for the rest.</p></footer>
</main>
</body>
</html>
"""
