"""The day's Parquet copy: ``UNLOAD`` of the deduplicated rows to ``parquet/dt=YYYY-MM-DD/``.

The rows are the CSV query's (``queries.deduplicated_rows``): the same records, the
same copy of each duplicate, the same flattening. The schema never changes whatever
the day holds, so the Glue table ``events_daily`` (``infrastructure/pipeline.yaml``)
is written once:

- the fixed and server columns, typed (:data:`TYPED_COLUMNS`);
- ``attributes``: every ``attr_*`` cell, without the prefix (``nested_depth`` for
  ``attr_nested_depth``), as ``map(varchar, varchar)``;
- ``context``: every other top-level cell (custom context, fields added later), and a
  typed field whose value does not fit its type (nothing is lost), same map type.

Text is kept as sent: no leading ``'`` against spreadsheet formulas (no spreadsheet
reads Parquet). Numbers, booleans and lists are text as in the CSV.
"""

from __future__ import annotations

import datetime as dt

from chalicelib.athena.queries import KEPT_ROW, ROW_ORDER, deduplicated_rows
from chalicelib.athena.sql import as_date, quote_identifier, quote_literal
from chalicelib.csv.columns import ATTRIBUTE_PREFIX
from chalicelib.layout import parquet_day_prefix

# (column, Athena type) in the table's order; ``varchar`` columns hold the cell text.
TYPED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("timestamp", "bigint"),
    ("serverTimestamp", "timestamp"),
    ("sessionId", "varchar"),
    ("metricName", "varchar"),
    ("value", "double"),
    ("demoContentId", "varchar"),
    ("device", "varchar"),
    ("deviceCodename", "varchar"),
    ("language", "varchar"),
    ("eventId", "varchar"),
    ("derivedTimestamp", "timestamp"),
    ("seq", "bigint"),
    ("uaBrowser", "varchar"),
    ("uaBrowserVersion", "varchar"),
    ("uaOs", "varchar"),
    ("uaOsVersion", "varchar"),
    ("uaDeviceType", "varchar"),
    ("country", "varchar"),
    ("isBot", "boolean"),
    ("botReason", "varchar"),
    ("userAgent", "varchar"),
)
ATTRIBUTES_COLUMN = "attributes"
CONTEXT_COLUMN = "context"
MAP_COLUMN_TYPE = "map(varchar, varchar)"
PARQUET_COMPRESSION = "ZSTD"
_CELLS = '"__cells"'


def _typed(cell: str, kind: str) -> str:
    """A cell's text as the column's type; NULL when it does not fit."""
    if kind == "varchar":
        return cell
    if kind == "timestamp":
        # ISO 8601 with its offset, as UTC wall-clock time (Parquet has no zone).
        return f"TRY(CAST(from_iso8601_timestamp({cell}) AT TIME ZONE 'UTC' AS TIMESTAMP))"
    return f"TRY_CAST({cell} AS {kind.upper()})"


def _cell(name: str) -> str:
    return f"element_at({_CELLS}, {quote_literal(name)})"


def _fits(key: str) -> str:
    """SQL true when the cell named ``key`` has a place of its own in a typed column."""
    value = f"element_at({_CELLS}, {key})"
    cases = " ".join(
        f"WHEN {quote_literal(name)} THEN {_typed(value, kind)} IS NOT NULL"
        for name, kind in TYPED_COLUMNS
        if kind != "varchar"
    )
    text_columns = ", ".join(quote_literal(n) for n, kind in TYPED_COLUMNS if kind == "varchar")
    return f"(contains(ARRAY[{text_columns}], {key}) OR COALESCE(CASE {key} {cases} END, FALSE))"


def _as_map(keys: str, key_name: str) -> str:
    """``map(varchar, varchar)`` of the cells named in ``keys``, each under ``key_name``."""
    return (
        f"COALESCE(map(transform({keys}, k -> {key_name}), "
        f"transform({keys}, k -> element_at({_CELLS}, k))), "
        f"CAST(MAP() AS {MAP_COLUMN_TYPE.upper()}))"
    )


def build_parquet_select(database: str, table: str, day: dt.date | str) -> str:
    """The SELECT whose rows are the day's Parquet copy (the body of the UNLOAD)."""
    d = as_date(day)
    present = f"filter(map_keys({_CELLS}), k -> element_at({_CELLS}, k) IS NOT NULL)"
    attributes = f'filter("__present", k -> starts_with(k, {quote_literal(ATTRIBUTE_PREFIX)}))'
    context = (
        f'filter("__present", k -> NOT starts_with(k, {quote_literal(ATTRIBUTE_PREFIX)}) '
        f"AND NOT {_fits('k')})"
    )
    columns = [
        f"{_typed(_cell(name), kind)} AS {quote_identifier(name)}" for name, kind in TYPED_COLUMNS
    ]
    columns.append(
        f"{_as_map(attributes, f'substr(k, {len(ATTRIBUTE_PREFIX) + 1})')} "
        f"AS {quote_identifier(ATTRIBUTES_COLUMN)}"
    )
    columns.append(f"{_as_map(context, 'k')} AS {quote_identifier(CONTEXT_COLUMN)}")
    return (
        f"-- Parquet copy (events_daily) for {d.isoformat()} (UTC day of Firehose arrival).\n"
        + deduplicated_rows(database, table, d, neutralize=False)
        + ",\n"
        "kept AS (\n"
        f'  SELECT *, COALESCE({present}, ARRAY[]) AS "__present"\n'
        "  FROM ranked\n"
        f"  WHERE {KEPT_ROW}\n"
        ")\n"
        "SELECT\n  " + ",\n  ".join(columns) + "\nFROM kept\n"
        f"ORDER BY {ROW_ORDER}"
    )


def build_parquet_unload(database: str, table: str, day: dt.date | str, location: str) -> str:
    """``UNLOAD`` the day's rows to ``location`` (``s3://bucket/parquet/dt=YYYY-MM-DD/``,
    which must be empty: Athena refuses to write over files)."""
    if not location.startswith("s3://") or not location.endswith("/"):
        raise ValueError(f"the Parquet location must be an s3://…/ folder, not {location!r}")
    return (
        f"UNLOAD (\n{build_parquet_select(database, table, day)}\n)\n"
        f"TO {quote_literal(location)}\n"
        f"WITH (format = 'PARQUET', compression = '{PARQUET_COMPRESSION}')"
    )


def parquet_location(bucket: str, prefix: str, day: dt.date) -> str:
    """Where the day's Parquet files go: the table's ``dt`` partition folder."""
    return f"s3://{bucket}/{parquet_day_prefix(prefix, day)}"
