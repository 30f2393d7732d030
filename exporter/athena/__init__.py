"""Athena: a day's combined CSV as SQL over the raw/ layout, for days past one Lambda.

Past one Lambda's reach the exporter's job moves to Amazon Athena, reading the same
``raw/YYYY/MM/DD/HH/*.gz`` objects through the lines table that
``infrastructure/pipeline.yaml`` defines (one string column per raw line, partition
projection on year/month/day/hour). The modules:

- ``sql``: the per-row SQL expressions that follow the converter's cell rules;
- ``queries``: the day's columns, CSV and bad-lines queries, within Athena's limits;
- ``runner``: running them (boto3, polled, stopped on timeout);
- ``command``: ``python -m exporter athena-query``.
"""

from __future__ import annotations

from exporter.athena.command import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    KNOWN_EXTRA_COLUMNS,
    athena_query,
    attribute_column,
    named_columns,
    parse_attribute_option,
)
from exporter.athena.queries import (
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
from exporter.athena.runner import (
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
from exporter.athena.sql import partition_predicates, quote_identifier, quote_literal

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
