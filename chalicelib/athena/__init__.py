"""Athena: a day's combined CSV and its Parquet copy as SQL over the raw/ layout.

Past one Lambda's reach the daily build moves to Amazon Athena, reading the same
``raw/YYYY/MM/DD/HH/*.gz`` objects through the lines table that
``infrastructure/pipeline.yaml`` defines (one string column per raw line, partition
projection on year/month/day/hour). The SQL lives here so that both the Lambda
handlers and ``python -m exporter athena-query`` build it with one module:

- ``sql``: the per-row SQL expressions that follow the converter's cell rules;
- ``queries``: the day's columns, CSV and bad-lines queries, within Athena's limits;
- ``parquet``: the day's Parquet copy (``UNLOAD`` to ``parquet/dt=YYYY-MM-DD/``);
- ``runner``: running a query and waiting for it (the command line);
- ``daily``: the schedule's event-driven build (no Lambda waits for a query);
- ``locate``: erasure's query naming the raw objects that may hold a match;
- ``on_demand``: ``python -m exporter athena-query``'s queries, printed and run.

Never imports ingest, rejects or dev: it reads what the sinks stored.
"""

from __future__ import annotations

from chalicelib.athena.queries import (
    LINE_COLUMN,
    MAX_QUERY_BYTES,
    ColumnCounts,
    DailyQuery,
    build_bad_lines_query,
    build_columns_query,
    build_daily_csv_query,
    daily_csv_query,
    parse_column_counts,
    rank_columns,
)
from chalicelib.athena.runner import (
    DEFAULT_TIMEOUT_SECONDS,
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
from chalicelib.config import DailyBuild

# The stack's names (infrastructure/pipeline.yaml), as the stage settings default them.
DEFAULT_DATABASE = DailyBuild.database
DEFAULT_TABLE = DailyBuild.table
DEFAULT_WORKGROUP = DailyBuild.workgroup

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_TABLE",
    "DEFAULT_TIMEOUT_SECONDS",
    "DEFAULT_WORKGROUP",
    "LINE_COLUMN",
    "MAX_QUERY_BYTES",
    "AthenaQueryError",
    "AthenaQueryTimeout",
    "BadObject",
    "ColumnCounts",
    "DailyQuery",
    "QueryExecution",
    "Runner",
    "build_bad_lines_query",
    "build_columns_query",
    "build_daily_csv_query",
    "daily_csv_query",
    "discover_columns",
    "execute_query",
    "fetch_rows",
    "find_bad_objects",
    "parse_column_counts",
    "partition_predicates",
    "quote_identifier",
    "quote_literal",
    "rank_columns",
]
