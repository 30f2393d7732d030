"""The command-line side of Athena: ``python -m exporter athena-query`` (``command``).

The SQL and the runner live in ``chalicelib.athena`` (the Lambda handlers build the
same queries); they are re-exported here for the command line's callers.
"""

from __future__ import annotations

from chalicelib.athena import DEFAULT_DATABASE, DEFAULT_TABLE
from chalicelib.athena.queries import (
    LINE_COLUMN,
    MAX_QUERY_BYTES,
    DailyQuery,
    build_bad_lines_query,
    build_columns_query,
    build_daily_csv_query,
    daily_csv_query,
    parse_column_counts,
    rank_columns,
)
from chalicelib.athena.runner import (
    AthenaQueryError,
    AthenaQueryTimeout,
    BadObject,
    QueryExecution,
    Runner,
    discover_columns,
    execute_query,
    fetch_rows,
    find_bad_objects,
)
from chalicelib.athena.sql import partition_predicates, quote_identifier, quote_literal
from exporter.athena.command import (
    KNOWN_EXTRA_COLUMNS,
    athena_query,
    attribute_column,
    named_columns,
    parse_attribute_option,
)

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "KNOWN_EXTRA_COLUMNS",
    "LINE_COLUMN",
    "MAX_QUERY_BYTES",
    "AthenaQueryError",
    "AthenaQueryTimeout",
    "BadObject",
    "DailyQuery",
    "QueryExecution",
    "Runner",
    "athena_query",
    "attribute_column",
    "build_bad_lines_query",
    "build_columns_query",
    "build_daily_csv_query",
    "daily_csv_query",
    "discover_columns",
    "execute_query",
    "fetch_rows",
    "find_bad_objects",
    "named_columns",
    "parse_attribute_option",
    "parse_column_counts",
    "partition_predicates",
    "quote_identifier",
    "quote_literal",
    "rank_columns",
]
