"""The Athena locator of erasure: one query over the raw table that names the objects that
may hold a match, so an erasure reads only those. The scan that follows decides exactly."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import time
from collections.abc import Callable
from itertools import groupby
from typing import TYPE_CHECKING

from chalicelib.athena import DEFAULT_DATABASE, DEFAULT_TABLE, DEFAULT_WORKGROUP
from chalicelib.athena.queries import LINE_COLUMN
from chalicelib.athena.runner import DEFAULT_TIMEOUT_SECONDS, Runner
from chalicelib.athena.sql import quote_identifier, quote_literal
from chalicelib.erase.request import ErasureError, ErasureRequest
from chalicelib.layout import days_between

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient


def partition_filter(first: dt.date, last: dt.date) -> str:
    """The raw/YYYY/MM/DD/ days of the range as partition predicates: a whole month as
    year and month, a part of one with its days listed. Projection prunes on these."""
    clauses = []
    for (year, month), group in groupby(days_between(first, last), lambda d: (d.year, d.month)):
        in_month = list(group)
        clause = (
            f'"year" = {quote_literal(str(year))} AND "month" = {quote_literal(f"{month:02d}")}'
        )
        if len(in_month) < calendar.monthrange(year, month)[1]:
            listed = ", ".join(quote_literal(f"{d.day:02d}") for d in in_month)
            clause += f' AND "day" IN ({listed})'
        clauses.append(f"({clause})")
    return " OR ".join(clauses)


def build_locate_query(database: str, table: str, request: ErasureRequest) -> str:
    """``SELECT DISTINCT "$path"`` of the raw objects that may hold a match in the range.

    The events table has one column, each raw line's text (see chalicelib/athena), so any
    top-level field can be located. A line matches when the field's value is one asked
    for, or when its text holds one anywhere (so lines that are not JSON, or that spell a
    value with escapes, are not missed): the scan that follows decides exactly.
    """
    line = quote_identifier(LINE_COLUMN)
    conditions = []
    for name, values in request.criteria:
        path = quote_literal("$[" + json.dumps(name) + "]")
        listed = ", ".join(quote_literal(value) for value in values)
        conditions.append(f"json_extract_scalar({line}, {path}) IN ({listed})")
        conditions.extend(f"strpos({line}, {quote_literal(value)}) > 0" for value in values)
    matches = "\n    OR ".join(conditions)
    return (
        f"-- Raw objects holding events to erase, {request.first} to {request.last} (UTC).\n"
        f'SELECT DISTINCT "$path" AS path\n'
        f"FROM {quote_identifier(database)}.{quote_identifier(table)}\n"
        f"WHERE ({partition_filter(request.first, request.last)})\n"
        f"  AND ({matches})"
    )


def locate_with_athena(
    athena: AthenaClient,
    request: ErasureRequest,
    *,
    bucket: str,
    database: str = DEFAULT_DATABASE,
    table: str = DEFAULT_TABLE,
    workgroup: str | None = DEFAULT_WORKGROUP,
    output_location: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Run the locate query and return the keys (in ``bucket``) it found."""
    runner = Runner(
        athena, workgroup=workgroup, output_location=output_location, timeout=timeout, sleep=sleep
    )
    rows, _ = runner.results(build_locate_query(database, table, request))
    keys = []
    for row in rows:
        path = row[0] if row else None
        if not path:
            continue
        found_bucket, _, key = path.removeprefix("s3://").partition("/")
        if found_bucket != bucket:
            raise ErasureError(
                f"Athena's table reads s3://{found_bucket}/, not the --source bucket {bucket}: "
                "give the matching --athena-database/--athena-table"
            )
        keys.append(key)
    return keys
