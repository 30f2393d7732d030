"""exporter.athena's cell rules on an engine, value by value, and the side-by-side of
both CSVs that ATHENA.md shows (regenerated here, so the page stays true)."""

from __future__ import annotations

import decimal
import json
import random
import re
from pathlib import Path
from typing import Any

import duckdb
import orjson

from chalicelib.athena.sql import cell_text, number_text
from chalicelib.csv.columns import format_cell
from tests.test_athena_queries import (
    ATHENA_DOC,
    athena_csv,
    con,
    lambda_csv,
    mirror_glue_table,
    random_float,
    route_lines,
    run_query,
    write_object,
)

__all__ = ["con"]  # the DuckDB fixture, shared


def athena_csv_text(header: list[str], rows: list[list[str | None]]) -> str:
    """The result as Athena writes it to S3: every value quoted, NULL as nothing."""

    def field(cell: str | None) -> str:
        return "" if cell is None else '"' + cell.replace('"', '""') + '"'

    table: list[list[str | None]] = [list(header), *rows]
    return "".join(",".join(field(c) for c in row) + "\n" for row in table)


# --- the side-by-side in ATHENA.md ------------------------------------------------------


def small_day(root: Path) -> None:
    t0 = 1706954400000
    first = route_lines(
        [
            {
                "eventId": "e1",
                "timestamp": t0,
                "sessionId": "s1",
                "metricName": "ContentPageLoad",
                "value": 1,
                "metricAttributes": {"title": '=HYPERLINK("x")', "scroll": {"depth": 0.75}},
            },
            {
                "eventId": "e2",
                "timestamp": t0 + 1500,
                "sessionId": "s1",
                "metricName": "ContentElementInteraction",
                "value": 0.1,
                "metricAttributes": {"tags": ["a", "b"], "big": 1e16},
            },
        ],
        {"language": "en_us"},
        t0 + 2000,
        {"country": "NZ", "isBot": False, "botReason": ""},
    )
    write_object(root, 10, "a.gz", [*first, b"{broken\n"])
    write_object(root, 10, "b.gz", [first[1]])  # a Firehose retry of e2


def _doc_block(name: str) -> str:
    match = re.search(rf"<!-- side-by-side:{name} -->\n```csv\n(.*?)```", ATHENA_DOC, re.S)
    assert match, f"ATHENA.md has no side-by-side:{name} block"
    return match.group(1)


def test_side_by_side_in_the_docs_is_what_both_paths_give(
    tmp_path: Path, con: duckdb.DuckDBPyConnection
) -> None:
    small_day(tmp_path)
    mirror_glue_table(con, tmp_path)
    _, _, out = lambda_csv(tmp_path, 1000)
    header, rows = athena_csv(con, 1000)
    assert _doc_block("lambda") == out.read_text(encoding="utf-8").replace("\r\n", "\n")
    assert _doc_block("athena") == athena_csv_text(header, rows)


# --- the cell rules, value by value -----------------------------------------------------


def _render_all(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[str | None]:
    """``cell_text`` of each JSON text, in order, in one query."""
    con.execute("CREATE OR REPLACE TABLE samples (n INTEGER, j VARCHAR)")
    con.executemany("INSERT INTO samples VALUES (?, ?)", list(enumerate(texts)))
    values = "SELECT n, json_parse(j) AS v FROM samples"
    sql = f"SELECT {cell_text('v')} AS c FROM ({values}) AS s ORDER BY n"
    return [row[0] for row in run_query(con, sql)[1]]


def _java_text(value: float) -> str:
    """Java's Double.toString layout (what Trino's JSON functions print) of a float's
    shortest digits: positional from 1e-3 up to 1e7, else d.dddEn."""
    sign, digit_tuple, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    prefix = "-" if sign else ""
    if digits == "0":
        return prefix + "0.0"
    assert isinstance(exponent, int)
    first = len(digits) - 1 + exponent  # the decimal exponent of the first digit
    if not 1e-3 <= abs(value) < 1e7:
        return f"{prefix}{digits[0]}.{digits[1:] or '0'}E{first}"
    if first < 0:
        return f"{prefix}0.{'0' * (-first - 1)}{digits}"
    whole = digits[: first + 1].ljust(first + 1, "0")
    return f"{prefix}{whole}.{digits[first + 1 :] or '0'}"


def test_numbers_render_as_python_str_whatever_the_engines_layout(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rng = random.Random(1)
    floats = [random_float(rng) for _ in range(1500)]
    floats += [0.0, -0.0, 1e16, 1e-5, 1e-4, 9999999999999998.0, 1e22, 5e-324, 0.1 + 0.2, 100.0]
    floats += [1.7976931348623157e308, 2.5e-7, 123456.789, 1e15, -1e-300]
    ints = [0, -1, 7, 2**63 - 1, 2**64 + 1, -(2**90), 10**30]
    expected = [str(x) for x in floats] + [str(i) for i in ints]
    # As orjson and Python's json write them, as Java prints a double, and re-parsed by
    # the engine itself (DuckDB prints 1e16 as 10000000000000000.0).
    for texts in (
        [orjson.dumps(x).decode() for x in floats],
        [json.dumps(x) for x in floats],
        [_java_text(x) for x in floats],
    ):
        texts = texts + [str(i) for i in ints]
        assert _render_all(con, texts) == expected
    # number_text on the text itself, no JSON engine between.
    java = [_java_text(x) for x in floats]
    sql = f"SELECT {number_text('j')} FROM (SELECT n, j FROM samples) AS s ORDER BY n"
    con.execute("CREATE OR REPLACE TABLE samples (n INTEGER, j VARCHAR)")
    con.executemany("INSERT INTO samples VALUES (?, ?)", list(enumerate(java)))
    assert [row[0] for row in run_query(con, sql)[1]] == [str(x) for x in floats]


def test_text_is_neutralised_as_the_converter_does(con: duckdb.DuckDBPyConnection) -> None:
    rng = random.Random(2)
    padding = ["\x00", "\x01", " ", "\t", "\r", "\n", "\x7f", "\xa0", "\u1680", "\u180e"]
    padding += ["\u2000", "\u200b", "\u200f", "\u2028", "\u202f", "\u205f", "\u2064", "\u3000"]
    padding += ["\ufeff", "\u2065", "\u1681", "\xa1"]  # the last three are not padding
    alphabet = [*padding, "=", "+", "-", "@", "a", "1", "'", '"', ",", "😀"]
    strings = ["", "=", "a=b", "-", "'=x", "=" * 3]
    strings += [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 6))) for _ in range(3000)
    ]
    values: list[Any] = [
        *strings,
        True,
        False,
        None,
        [],
        ["=x", 1.5],
        {"deep": "=x"},
        [{"b": 1, "a": 2}],
    ]
    rendered = _render_all(con, [json.dumps(v) for v in values])
    assert rendered == [None if v is None else format_cell(v, True) for v in values]
