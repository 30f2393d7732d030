"""exporter.athena's SQL as text: it parses as Athena's dialect, names only what it
should, quotes what comes from outside, picks the converter's columns and fits
Athena's query size limit."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from chalicelib.athena import (
    MAX_QUERY_BYTES,
    build_bad_lines_query,
    build_columns_query,
    build_daily_csv_query,
    daily_csv_query,
    parse_column_counts,
    partition_predicates,
    quote_identifier,
    quote_literal,
    rank_columns,
)
from chalicelib.athena.sql import text_value
from chalicelib.csv.columns import FIXED_COLUMNS, OVERFLOW_COLUMN, header_cell
from tests.conftest import REPO_ROOT

DB = "owned_analytics"
TABLE = "events"
DAY = "2024-02-03"
ODD_KEYS = [
    "it's",
    'say "hi"',
    "x')) AS y FROM t; DROP TABLE events; --",
    'x" FROM t; DROP TABLE events; --',
    "new\nline -- comment",
    "ümlaut ✓",
    "$.path[0]",
    "back\\slash'",
    "=formula",
    "nul\x00key",
]


def parsed(sql: str) -> exp.Expr:
    """The statement, parsed as Trino (Athena engine 3); exactly one."""
    statements = sqlglot.parse(sql, read="trino")
    assert len(statements) == 1
    statement = statements[0]
    assert statement is not None
    return statement


def output_names(sql: str) -> list[str]:
    """The final SELECT's column names, in order."""
    statement = parsed(sql)
    assert isinstance(statement, exp.Select)
    return [e.alias_or_name for e in statement.expressions]


def counts_of(*columns: str) -> dict[str, tuple[int, str]]:
    return dict.fromkeys(columns, (1, ""))


# --- every query parses ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        build_columns_query(DB, TABLE, DAY),
        build_bad_lines_query(DB, TABLE, DAY),
        daily_csv_query(DB, TABLE, DAY, counts_of("attr_a", "ctx")).sql,
        daily_csv_query(
            DB, TABLE, DAY, counts_of(*[f"attr_{n}" for n in range(30)]), max_columns=11
        ).sql,
        build_daily_csv_query(DB, TABLE, DAY, list(FIXED_COLUMNS), order_rows=False),
    ],
    ids=["columns", "bad-lines", "csv", "csv-overflow", "csv-unordered"],
)
def test_every_query_parses_as_trino(sql: str) -> None:
    statement = parsed(sql)
    assert isinstance(statement, exp.Select)
    tables = {t.name for t in statement.find_all(exp.Table)}
    assert TABLE in tables
    assert sql.isascii(), "non-ASCII only inside quotes: the pattern uses chr()"


def test_csv_query_columns_are_the_header() -> None:
    query = daily_csv_query(DB, TABLE, DAY, counts_of("attr_b", "zeta", "attr_a", "appVersion"))
    assert query.columns == [*FIXED_COLUMNS, "appVersion", "zeta", "attr_a", "attr_b"]
    assert output_names(query.sql) == query.columns
    assert query.overflowed == []
    assert 'ORDER BY "__path", "__server" ASC NULLS LAST, "__line"' in query.sql


def test_unordered_drops_only_the_final_sort() -> None:
    ordered = build_daily_csv_query(DB, TABLE, DAY, list(FIXED_COLUMNS))
    unordered = build_daily_csv_query(DB, TABLE, DAY, list(FIXED_COLUMNS), order_rows=False)
    assert unordered == ordered.rsplit("\nORDER BY", 1)[0]
    assert "row_number() OVER" in unordered  # the dedupe still picks the first copy


def test_reads_only_that_days_partitions() -> None:
    for sql in (build_columns_query(DB, TABLE, DAY), build_bad_lines_query(DB, TABLE, DAY)):
        assert "WHERE \"year\" = '2024' AND \"month\" = '02' AND \"day\" = '03'" in sql
        assert '"hour"' not in sql  # all 24 hours of the day
        assert sql.count('FROM "owned_analytics"."events"') == 1
    assert partition_predicates(dt.date(2024, 12, 31)) == (
        "\"year\" = '2024' AND \"month\" = '12' AND \"day\" = '31'"
    )
    assert partition_predicates(dt.datetime(2024, 1, 5, 23, 59)) == partition_predicates(
        "2024-01-05"
    )


@pytest.mark.parametrize("bad", ["2024-13-01", "yesterday", "2024/02/03", ""])
def test_bad_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        build_columns_query(DB, TABLE, bad)


# --- quoting ----------------------------------------------------------------------------


def test_quote_helpers() -> None:
    assert quote_identifier("a") == '"a"'
    assert quote_identifier('we"ird') == '"we""ird"'
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("back\\slash") == "'back\\slash'"  # no escaping in Trino literals
    for bad in ("", "nul\x00"):
        with pytest.raises(ValueError):
            quote_identifier(bad)
    with pytest.raises(ValueError):
        quote_literal("nul\x00")
    with pytest.raises(TypeError):
        quote_literal(1)  # type: ignore[arg-type]
    assert text_value("a'b") == "'a''b'"
    assert text_value("a\x00b\x00") == "('a' || chr(0) || 'b' || chr(0) || '')"


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_column_names_stay_inside_quotes(key: str) -> None:
    columns = [f"attr_{key}", f"attr_outer_{key}", key.replace("\n", " ").lstrip("=")]
    query = daily_csv_query(DB, TABLE, DAY, counts_of(*columns))
    statement = parsed(query.sql)
    assert not list(statement.find_all(exp.Drop))
    assert text_value(f"attr_{key}") in query.sql
    names = output_names(query.sql)
    expected = [header_cell(f"attr_{key}", True), header_cell(f"attr_outer_{key}", True)]
    assert sorted(names[-2:]) == sorted(expected)


def test_header_cells_follow_the_converter() -> None:
    # A top-level key from elsewhere that a spreadsheet would run; a control character.
    query = daily_csv_query(DB, TABLE, DAY, counts_of("@timestamp", "tab\there"))
    names = output_names(query.sql)
    assert "'@timestamp" in names and "tab\\u0009here" in names


def test_odd_database_and_table_names_are_quoted() -> None:
    sql = build_columns_query('my"db', "t; DROP TABLE x", DAY)
    assert 'FROM "my""db"."t; DROP TABLE x"' in sql
    assert not list(parsed(sql).find_all(exp.Drop))


# --- which columns get a place ----------------------------------------------------------


def test_ranking_is_the_converters() -> None:
    counts = {
        "eventId": (2, "b"),
        "rare": (1, "a"),
        "common": (5, "z"),
        "tie_b": (3, "p1\x01a"),
        "tie_a": (3, "p1\x01b"),
        "_overflow": (9, ""),
    }
    ranked = rank_columns(counts)
    assert set(ranked[:9]) == set(FIXED_COLUMNS)
    # then eventId, then by objects holding the column, ties by where first seen
    assert ranked[9:] == ["eventId", "common", "tie_b", "tie_a", "rare"]


def test_column_budget_sends_the_rest_to_overflow() -> None:
    counts = {f"attr_{n:02d}": (n, "") for n in range(1, 21)}
    counts["eventId"] = (1, "")
    query = daily_csv_query(DB, TABLE, DAY, counts, max_columns=15)
    assert len(query.columns) == 15 and query.columns[-1] == OVERFLOW_COLUMN
    # fixed (9), eventId, then the four held by the most objects
    assert query.columns[9:-1] == ["eventId", "attr_17", "attr_18", "attr_19", "attr_20"]
    assert sorted(query.overflowed) == [f"attr_{n:02d}" for n in range(1, 17)]
    assert output_names(query.sql) == query.columns
    assert 'array_sort(filter(map_keys("__cells")' in query.sql
    exact = daily_csv_query(DB, TABLE, DAY, counts, max_columns=31)
    assert OVERFLOW_COLUMN not in exact.columns and '"__o"' not in exact.sql


def test_parse_column_counts() -> None:
    assert parse_column_counts([["a", "3", "x"], ["b", "1", None]]) == {"a": (3, "x"), "b": (1, "")}
    for bad in (["a", "x", ""], ["a", "1"], [None, "1", ""]):
        with pytest.raises(ValueError):
            parse_column_counts([bad])


# --- Athena's query size limit --------------------------------------------------------------


def attribute_counts(number: int, length: int) -> dict[str, tuple[int, str]]:
    return {f"attr_{n:0{length}d}": (1, f"{n:06d}") for n in range(number)}


def test_a_thousand_keys_of_sixty_characters_fit() -> None:
    query = daily_csv_query(DB, TABLE, DAY, attribute_counts(1000, 60))
    size = len(query.sql.encode("utf-8"))
    assert size < MAX_QUERY_BYTES
    assert len(query.columns) == 1000 and len(query.overflowed) == 10
    # ATHENA.md states this size; keep it true.
    doc = (REPO_ROOT / "docs" / "ATHENA.md").read_text(encoding="utf-8")
    assert f"{size:,} bytes" in doc, f"ATHENA.md should give the size, {size:,} bytes"


@pytest.mark.parametrize(("length", "text"), [(300, "ascii"), (250, "é✓")])
def test_long_names_go_to_overflow_until_the_query_fits(length: int, text: str) -> None:
    counts: dict[str, Any] = {
        f"attr_{n:04d}{text * (length // len(text))}": (1000 - n, "") for n in range(1000)
    }
    query = daily_csv_query(DB, TABLE, DAY, counts)
    size = len(query.sql.encode("utf-8"))
    assert MAX_QUERY_BYTES - 2_000 < size <= MAX_QUERY_BYTES
    assert query.overflowed, "some columns could not be named"
    kept = [c for c in query.columns if c.startswith("attr_")]
    # the most held ones keep their place
    assert kept == sorted(kept) and kept[0].startswith("attr_0000")
    assert output_names(query.sql) == query.columns


def test_even_the_fixed_columns_need_room() -> None:
    with pytest.raises(ValueError, match="fixed columns"):
        daily_csv_query(DB, TABLE, DAY, attribute_counts(20, 10), max_bytes=5_000)


def test_the_cell_rules_appear_once() -> None:
    """The per-value rules are applied by one lambda, not repeated per column: the
    query grows by a few bytes per column, whatever the rules cost."""
    small = daily_csv_query(DB, TABLE, DAY, attribute_counts(10, 5)).sql
    large = daily_csv_query(DB, TABLE, DAY, attribute_counts(110, 5)).sql
    per_column = (len(large) - len(small)) / 100
    assert per_column < 50
    assert small.count("regexp_like(s,") == large.count("regexp_like(s,") == 1
    assert re.search(r'"__n"\[110\] AS "attr_\d{5}"', large)
