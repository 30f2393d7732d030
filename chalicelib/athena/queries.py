"""The three Athena queries of a day: its columns, its CSV, and its unreadable lines.

All read the lines table (one string column per raw line, partition projection on
year/month/day/hour, ``infrastructure/pipeline.yaml``) and share one chain of
common table expressions (:func:`_cells_ctes`), so the columns a day's
:func:`build_columns_query` finds are by construction the names the CSV query
produces:

- :func:`build_columns_query`: every column of the day with how many objects hold
  it (what the converter ranks columns by at the column budget);
- :func:`daily_csv_query`: the day's ``YYYY-MM-DD_combined.csv``, columns chosen as
  the converter chooses them (budget, ``_overflow``), and kept under Athena's
  262,144-byte query limit whatever the names' lengths;
- :func:`build_bad_lines_query`: the objects holding lines that are not a JSON
  object, with how many, so that just those can go through ``export``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.athena.sql import (
    FLATTEN_LEVELS,
    as_date,
    attributes_object,
    cell_text,
    deeper,
    empty_object,
    first_keys,
    first_values,
    json_format_sql,
    let,
    parsed_record,
    partition_predicates,
    quote_identifier,
    quote_literal,
    table_ref,
    text_value,
    top_level_keys,
)
from chalicelib.csv.columns import (
    DEFAULT_MAX_COLUMNS,
    FIXED_COLUMNS,
    OVERFLOW_COLUMN,
    header_cell,
    order_columns,
)
from chalicelib.csv.spool import ID_COLUMN

ColumnCounts = Mapping[str, tuple[int, str]]
"""``{column: (objects holding it, where it is first seen as sortable text)}``."""
# Athena refuses a query string longer than this many bytes.
MAX_QUERY_BYTES = 262_144
# The lines table's one column: a raw line as it is.
LINE_COLUMN = "line"
_LAST = FLATTEN_LEVELS
_RECORD = '"__record"'
_HELD = '"__held"'
_TOP = '"__top"'
_ATTRS = '"__attrs"'
# What every level carries along for the queries after it.
_CARRIED = '"__path", "__line", "__record"'
_KEYS = f'"__k{_LAST}"'
_VALUES = f'"__v{_LAST}"'
# JSON string escapes as orjson writes them (the overflow cell is orjson's text).
_SHORT_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
# The order of rows, and of the copies of one event (the first is kept).
ROW_ORDER = '"__path", "__server" ASC NULLS LAST, "__line"'
# Which rows of ``ranked`` (:func:`deduplicated_rows`) are kept.
KEPT_ROW = '"__event" IS NULL OR "__rn" = 1'


@dataclass(frozen=True)
class DailyQuery:
    """The CSV query and what it was built with."""

    sql: str
    columns: list[str]
    """The header, in order (``_overflow`` last when present)."""
    overflowed: list[str]
    """Columns of the day without a place of their own: their cells are in ``_overflow``."""


def _header(day: dt.date, what: str) -> str:
    return f"-- {what} for {day.isoformat()} (UTC day of Firehose arrival).\n"


def _field(name: str) -> str:
    return f"element_at({_RECORD}, {quote_literal(name)})"


def _records_cte(database: str, table: str, day: dt.date) -> str:
    """``records``: the day's lines, each with its object and parsed (NULL unless the
    line is a JSON object)."""
    line = quote_identifier(LINE_COLUMN)
    return (
        "WITH records AS (\n"
        f'  SELECT "$path" AS "__path", {line} AS "__line", {parsed_record(line)} AS {_RECORD}\n'
        f"  FROM {table_ref(database, table)}\n"
        f"  WHERE {partition_predicates(day)}\n"
        ")"
    )


def _cells_ctes(database: str, table: str, day: dt.date) -> str:
    """``records`` (each line parsed), ``objects`` (the lines that are JSON objects) and
    ``level0`` .. ``levelN``: each record's cell names ``__kN`` and JSON values ``__vN``,
    nested objects flattened one level per step."""
    levels = [
        "objects AS (\n"
        f'  SELECT *, {top_level_keys(_RECORD, _HELD)} AS "__top",\n'
        f'    COALESCE({_HELD}, {empty_object()}) AS "__attrs"\n'
        f"  FROM (SELECT *, {attributes_object(_RECORD)} AS {_HELD}\n"
        f"    FROM records WHERE {_RECORD} IS NOT NULL) AS parsed\n"
        ")",
        "level0 AS (\n"
        f"  SELECT {_CARRIED},\n"
        f'    {first_keys(_TOP, _ATTRS)} AS "__k0",\n'
        f'    {first_values(_RECORD, _TOP, _ATTRS)} AS "__v0"\n'
        "  FROM objects\n"
        ")",
    ]
    for n in range(1, FLATTEN_LEVELS + 1):
        keys, values = deeper(f'"__k{n - 1}"', f'"__v{n - 1}"')
        levels.append(
            f"level{n} AS (\n"
            f"  SELECT {_CARRIED},\n"
            f'    {keys} AS "__k{n}",\n'
            f'    {values} AS "__v{n}"\n'
            f"  FROM level{n - 1}\n"
            ")"
        )
    return _records_cte(database, table, day) + ",\n" + ",\n".join(levels)


def build_columns_query(database: str, table: str, day: dt.date | str) -> str:
    """Athena SQL listing the day's columns, one row each: ``column``, the number of
    ``objects`` holding it, and where it is ``first`` seen (object, serverTimestamp,
    place in the record, as one sortable text). Parse with :func:`parse_column_counts`."""
    d = as_date(day)
    server = f"COALESCE(json_extract_scalar({_field('serverTimestamp')}, '$'), '')"
    first = f"\"__path\" || chr(1) || {server} || chr(1) || lpad(CAST(n AS VARCHAR), 6, '0')"
    return (
        _header(d, "CSV columns and how many objects hold each")
        + _cells_ctes(database, table, d)
        + "\n"
        f'SELECT k AS "column", count(DISTINCT "__path") AS "objects", min({first}) AS "first"\n'
        f"FROM level{_LAST} CROSS JOIN UNNEST({_KEYS}) WITH ORDINALITY AS t (k, n)\n"
        "GROUP BY k\n"
        "ORDER BY k"
    )


def parse_column_counts(rows: Iterable[Sequence[str | None]]) -> ColumnCounts:
    """:func:`build_columns_query`'s rows (no header row) as ``{column: (objects, first)}``."""
    counts: dict[str, tuple[int, str]] = {}
    for row in rows:
        if len(row) != 3 or row[0] is None or row[1] is None:
            raise ValueError(f"unexpected row {list(row)!r} from the columns query")
        try:
            counts[row[0]] = (int(row[1]), row[2] or "")
        except ValueError:
            raise ValueError(f"unexpected object count {row[1]!r} for {row[0]!r}") from None
    return counts


def build_bad_lines_query(database: str, table: str, day: dt.date | str) -> str:
    """Athena SQL listing the objects with lines the CSV query skips (not a JSON
    object; blank lines do not count): ``object``, ``bad_lines``, ``lines``."""
    d = as_date(day)
    bad = f"sum(IF({_RECORD} IS NULL, 1, 0))"
    records = _cells_ctes(database, table, d).split(",\nobjects AS (", 1)[0]
    return (
        _header(d, "Objects with lines that are not a JSON object") + records + "\n"
        f'SELECT "__path" AS "object", {bad} AS "bad_lines", count(*) AS "lines"\n'
        "FROM records\n"
        "WHERE trim(\"__line\") <> ''\n"
        'GROUP BY "__path"\n'
        f"HAVING {bad} > 0\n"
        'ORDER BY "__path"'
    )


# --- the CSV query -------------------------------------------------------------------


def _json_string(text: str) -> str:
    """SQL for ``text`` as a JSON string literal, escaped as orjson escapes it."""
    escaped = f"replace(replace({text}, '\\', '\\\\'), '\"', '\\\"')"
    for code in range(32):
        escape = _SHORT_ESCAPES.get(code, f"\\u{code:04x}")
        escaped = f"replace({escaped}, chr({code}), {quote_literal(escape)})"
    return f"'\"' || {escaped} || '\"'"


def _overflow_cell() -> str:
    """The ``_overflow`` cell: the non-empty cells of columns without a place, as a JSON
    object sorted by column (``spool.overflow_text``); NULL when there are none."""
    cell = 'element_at("__cells", k)'
    entry = f"{_json_string('k')} || ':' || {_json_string(cell)}"
    extra = (
        f'array_sort(filter(map_keys("__cells"), k -> '
        f"element_at(\"__named\", k) IS NULL AND {cell} <> ''))"
    )
    return let(
        extra,
        "o",
        f"IF(cardinality(o) > 0, '{{' || array_join(transform(o, k -> {entry}), ',') || '}}')",
    )


def _row_cells(neutralize: bool = True) -> str:
    """Each row's cells as a map {column: cell text}. Two paths flattening to one
    name (``{"a": {"b": 1}}`` and ``"a_b"``) keep the first."""
    first = (
        f"filter(sequence(1, cardinality({_KEYS})), i -> array_position({_KEYS}, {_KEYS}[i]) = i)"
    )
    cells = f"map(transform(f, i -> {_KEYS}[i]), transform(f, i -> r[i]))"
    rendered = f"transform({_VALUES}, v -> {cell_text('v', neutralize=neutralize)})"
    return f"IF(cardinality({_KEYS}) > 0, {let(rendered, 'r', let(first, 'f', cells))})"


def deduplicated_rows(database: str, table: str, day: dt.date, *, neutralize: bool = True) -> str:
    """The chain of CTEs ending in ``ranked``: each record's cells (``"__cells"``, a map
    {column: cell text}) with its place among the copies of its (``sessionId``,
    ``eventId``). A row is kept when ``"__event" IS NULL OR "__rn" = 1``: one per
    (``sessionId``, ``eventId``) as the converter dedupes, the first by object
    (``$path``), then ``serverTimestamp``, then the line's text; rows without an
    ``eventId`` are all kept. The CSV query and the Parquet copy both read it."""
    session = f"NULLIF({json_format_sql(_field('sessionId'))}, 'null')"
    event = f"NULLIF(NULLIF({json_format_sql(_field(ID_COLUMN))}, 'null'), '\"\"')"
    server = f"json_extract_scalar({_field('serverTimestamp')}, '$')"
    return (
        _cells_ctes(database, table, day) + ",\n"
        "cells AS (\n"
        '  SELECT "__path", "__line",\n'
        f'    {_row_cells(neutralize)} AS "__cells",\n'
        f'    {session} AS "__session",\n'
        f'    {event} AS "__event",\n'
        f'    {server} AS "__server"\n'
        f"  FROM level{_LAST}\n"
        "),\n"
        "ranked AS (\n"
        '  SELECT *, row_number() OVER (PARTITION BY "__session", "__event" '
        f'ORDER BY {ROW_ORDER}) AS "__rn"\n'
        "  FROM cells\n"
        ")"
    )


def build_daily_csv_query(
    database: str,
    table: str,
    day: dt.date | str,
    columns: Sequence[str],
    *,
    overflow: bool = False,
    order_rows: bool = True,
) -> str:
    """Athena SQL whose result is the day's CSV with exactly ``columns`` (in that order;
    give them ordered by ``columns.order_columns``), plus ``_overflow`` when asked.

    The rows of :func:`deduplicated_rows`. ``order_rows=False`` drops the final ORDER BY.
    """
    if not columns:
        raise ValueError("the CSV needs at least one column")
    d = as_date(day)
    names = ", ".join(text_value(c) for c in columns)
    select = [
        f'"__n"[{index}] AS {quote_identifier(header_cell(column, True))}'
        for index, column in enumerate(columns, start=1)
    ]
    if overflow:
        select.append(f'"__o" AS {quote_identifier(OVERFLOW_COLUMN)}')
    overflow_sql = f',\n    {_overflow_cell()} AS "__o"' if overflow else ""
    return (
        _header(d, "Daily CSV (the Lambda's YYYY-MM-DD_combined.csv)")
        + deduplicated_rows(database, table, d)
        + ",\n"
        f'named_columns AS (SELECT "__names", map("__names", "__names") AS "__named" '
        f'FROM (SELECT ARRAY[{names}] AS "__names") AS listed),\n'
        "named AS (\n"
        '  SELECT "__path", "__server", "__line",\n'
        '    transform("__names", n -> element_at("__cells", n)) AS "__n"'
        f"{overflow_sql}\n"
        "  FROM ranked CROSS JOIN named_columns\n"
        f"  WHERE {KEPT_ROW}\n"
        ")\n"
        "SELECT\n  "
        + ",\n  ".join(select)
        + "\nFROM named"
        + (f"\nORDER BY {ROW_ORDER}" if order_rows else "")
    )


# --- which columns get a place -------------------------------------------------------


def rank_columns(counts: ColumnCounts) -> list[str]:
    """The converter's ranking (``convert._ColumnPool``): the fixed columns, ``eventId``,
    then by how many objects hold the column, then by where it is first seen."""
    fixed = set(FIXED_COLUMNS)
    names = set(counts) | fixed
    names.discard(OVERFLOW_COLUMN)

    def rank(column: str) -> tuple[bool, bool, int, str, str]:
        objects, first = counts.get(column, (0, ""))
        return (column not in fixed, column != ID_COLUMN, -objects, first, column)

    return sorted(names, key=rank)


def daily_csv_query(
    database: str,
    table: str,
    day: dt.date | str,
    counts: ColumnCounts,
    *,
    max_columns: int = DEFAULT_MAX_COLUMNS,
    order_rows: bool = True,
    max_bytes: int = MAX_QUERY_BYTES,
) -> DailyQuery:
    """The CSV query for a day whose columns (with their object counts) are ``counts``.

    As in the converter, at most ``max_columns`` columns, ``_overflow`` included: the
    fixed ones and ``eventId`` always, then the columns held by the most objects; the
    rest go into ``_overflow``. Past ``max_bytes`` of SQL, the least held of those
    columns go into ``_overflow`` too, until the query fits.
    """
    ranked = rank_columns(counts)
    # One column stays free for the overflow (convert._ColumnPool.limit).
    limit = max(max_columns - 1, len(FIXED_COLUMNS))
    must = len(FIXED_COLUMNS) + (ID_COLUMN in ranked)

    def build(kept: int) -> DailyQuery:
        named = order_columns(ranked[:kept])
        overflowed = ranked[kept:]
        # A record's own "_overflow" field goes into the column too, as in the converter.
        overflow = bool(overflowed) or OVERFLOW_COLUMN in counts
        sql = build_daily_csv_query(
            database, table, day, named, overflow=overflow, order_rows=order_rows
        )
        return DailyQuery(sql, named + ([OVERFLOW_COLUMN] if overflow else []), overflowed)

    query = build(min(limit, len(ranked)))
    if _size(query.sql) <= max_bytes:
        return query
    low, high = must, min(limit, len(ranked)) - 1  # the largest count that fits
    if _size(build(low).sql) > max_bytes:
        raise ValueError(f"even the fixed columns do not fit in {max_bytes} bytes of SQL")
    while low < high:
        middle = (low + high + 1) // 2
        if _size(build(middle).sql) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return build(low)


def _size(sql: str) -> int:
    return len(sql.encode("utf-8"))
