"""exporter.athena on an engine: its SQL, parsed and transpiled by sqlglot, run by DuckDB
over the raw files of a generated day, against ``python -m exporter export`` of the same day.

DuckDB reads the gzip objects through a view that mirrors the Glue table (one string
column ``line``, the partition columns from the path, ``"$path"``). The Lambda CSV and
the engine's result are compared cell by cell; a cell that differs only in a way
``docs/ATHENA.md`` lists as a documented difference is skipped and named in a
warning, so ``make test`` shows what was skipped, with the row and cell counts.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import random
import struct
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot.errors import ErrorLevel

from chalicelib.athena import (
    build_bad_lines_query,
    build_columns_query,
    daily_csv_query,
    parse_column_counts,
)
from chalicelib.config import Limits
from chalicelib.csv.columns import header_cell
from chalicelib.ingest.validate import BatchValidator
from exporter.cli import cli
from tests.conftest import REPO_ROOT

DB = "owned_analytics"
TABLE = "events"
DAY = "2024-02-03"
ATHENA_DOC = (REPO_ROOT / "docs" / "ATHENA.md").read_text(encoding="utf-8")


# --- DuckDB as the engine --------------------------------------------------------------


def to_duckdb(sql: str) -> str:
    """Parse ``sql`` as Athena's dialect (Trino) and write it for DuckDB; anything
    sqlglot cannot carry over is an error, not a silent approximation."""
    sqlglot.parse_one(sql, read="trino")
    return sqlglot.transpile(sql, read="trino", write="duckdb", unsupported_level=ErrorLevel.RAISE)[
        0
    ]


def mirror_glue_table(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """The Glue table as a DuckDB view over the same gzip objects: each line whole in
    ``line`` (the SerDe's \\x01 field delimiter never occurs in JSON), the partition
    values from the path as zero-padded strings, and Athena's ``"$path"``."""
    segment = "/raw/([0-9]{4})/([0-9]{2})/([0-9]{2})/([0-9]{2})/[^/]+$"
    partitions = ", ".join(
        f"regexp_extract(filename, '{segment}', {n}) AS {name}"
        for n, name in enumerate(("year", "month", "day", "hour"), start=1)
    )
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {DB}")
    con.execute(
        f'CREATE OR REPLACE VIEW {DB}.{TABLE} AS SELECT line, {partitions}, filename AS "$path" '
        f"FROM read_csv('{root}/raw/*/*/*/*/*.gz', columns={{'line': 'VARCHAR'}}, "
        "header=false, delim='\x01', quote='', escape='', auto_detect=false, filename=true, "
        "compression='gzip', new_line='\\n', strict_mode=false)"
    )


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[list[str | None]]]:
    """Header and rows, every cell as text or None, as Athena's API returns them."""
    cursor = con.execute(to_duckdb(sql))
    header = [column[0] for column in cursor.description]
    rows = [[None if cell is None else str(cell) for cell in row] for row in cursor.fetchall()]
    return header, rows


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET threads TO 2")
    yield connection
    connection.close()


# --- a generated day ------------------------------------------------------------------


def route_lines(
    events: list[dict[str, Any]],
    context: dict[str, Any],
    now_ms: int,
    server_fields: dict[str, Any] | None = None,
) -> list[bytes]:
    """Stored records as POST /events writes them (the route's own code), with
    ``server_fields`` as the route's per-request enrichment adds them."""
    body = {"sentAt": now_ms - 250, "context": context, "events": events}
    result = BatchValidator(Limits()).process(body, now_ms)
    assert not result.rejected, result.rejected
    if not server_fields:
        return result.records
    return [
        json.dumps({**json.loads(line), **server_fields}, ensure_ascii=False).encode() + b"\n"
        for line in result.records
    ]


def write_object(root: Path, hour: int, name: str, lines: list[bytes]) -> None:
    path = root / "raw" / "2024" / "02" / "03" / f"{hour:02d}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(lines)))


CONTEXT = {
    "device": "pixel-8",
    "deviceCodename": "shiba",
    "language": "en_us",
    "appVersion": "2.1.0",
    "gitCommitSha": "abc123",
    # Page context the browser client adds: custom context as far as the table goes.
    "pagePath": "=cmd|' /C calc'!A0",
    "referrer": "https://example.com/?q=a,b",
    "utm_source": "+newsletter",
}
# What the route adds per request (user agent, country, bot flag): no table change either.
SERVER_FIELDS = {
    "uaBrowser": "Firefox",
    "uaBrowserVersion": "128",
    "uaOs": "Android",
    "country": "NZ",
    "isBot": False,
    "botReason": "",
}
FORMULA_LIKE = [
    "=SUM(A1:A9)",
    "+1",
    "-1",
    "@user",
    "\t=tab",
    "\r=cr",
    "  =padded",
    "\u00a0@nbsp",
    "\u200b=zero-width",
    "\ufeff+bom",
    "\u2028-line-separator",
    "a=b",
    'multi\nline, "quoted"',
    "émoji 😀",
]


def random_float(rng: random.Random) -> float:
    while True:
        value: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            return value


def generated_day(root: Path) -> None:
    """A day with everything the issue names: duplicates (a Firehose retry of the same
    bytes, a client retry with a later serverTimestamp, one event id in two sessions),
    nested and list attributes, custom context, formula-like text, big integers, floats
    of every magnitude, records from elsewhere, and malformed lines."""
    rng = random.Random(14)
    t0 = 1706954400000  # 2024-02-03T10:00:00Z
    batches: list[list[bytes]] = []
    sent: list[dict[str, Any]] = []
    for batch in range(12):
        events = []
        for n in range(8):
            index = batch * 8 + n
            attributes: dict[str, Any] = {
                "action": rng.choice(["click", "view", "scroll"]),
                "text": FORMULA_LIKE[index % len(FORMULA_LIKE)],
                "ratio": random_float(rng) if index % 3 else rng.choice([0.1, 1e16, 1e-5, 2.5]),
                "count": rng.randrange(-(10**15), 10**15),
                "tags": ["a", index, True, None, 'é 😀\n"q"'] if index % 4 == 0 else [],
                "scores": [1e16, 0.5, index / 7] if index % 9 == 0 else [index],
                "nested": {"depth": {"more": {"deepest": {"leaf": index, "flag": None}}}},
                f"only_{index % 5}": "sometimes",
            }
            events.append(
                {
                    "eventId": f"evt-{index}",
                    "timestamp": t0 + index * 1000,
                    "sessionId": f"session-{index % 7}",
                    # The client's number in its session; sent as 2.0 now and then (JSON
                    # Schema's integer), which the route stores as 2.
                    "seq": index // 7 + 1 if index % 11 else float(index // 7 + 1),
                    "metricName": "ContentElementInteraction",
                    "value": [1, 2.5, None, -0.0, 1e21, 7][index % 6],
                    "demoContentId": FORMULA_LIKE[(index + 3) % len(FORMULA_LIKE)],
                    "metricAttributes": attributes,
                    "context": {"screenWidth": 390 + index} if index % 2 else {},
                }
            )
        sent += events
        batches.append(route_lines(events, CONTEXT, t0 + batch * 60_000 + 500, SERVER_FIELDS))
    # A client retry: the first batch's first event again, a minute later.
    retry = route_lines([sent[0]], CONTEXT, t0 + 30 * 60_000, SERVER_FIELDS)
    # Records from elsewhere (a backfill tool): what the route never writes.
    no_event_id = {
        "sessionId": "backfill",
        "timestamp": 1,
        "metricName": "NoEventId",
        "metricAttributes": json.dumps({"held": "in a string", "n": 1}),
        "serverTimestamp": "2024-02-03T11:00:01.000Z",
    }
    elsewhere = [
        json.dumps(record).encode() + b"\n"
        for record in [
            {
                "eventId": "big-1",
                "sessionId": "backfill",
                "timestamp": 2**70,
                "metricName": "Imported",
                "value": 123456789012345678901234567890,
                "serverTimestamp": "2024-02-03T11:00:00.000Z",
                "metricAttributes": {
                    "huge": -(2**80),
                    "small": 5e-324,
                    "big": 1.7976931348623157e308,
                },
            },
            no_event_id,  # twice: rows without an eventId are all kept
            no_event_id,
            {
                "eventId": 42,
                "sessionId": "backfill",
                "timestamp": 2,
                "metricName": "NumericId",
                "metricAttributes": [1, "not an object"],
                "geo": {"city": "=Wellington", "lat": -41.29, "none": None},
                "serverTimestamp": "2024-02-03T11:00:02.000Z",
            },
            {"eventId": "42", "sessionId": "backfill", "timestamp": 3, "metricName": "StringId"},
            {
                "eventId": "odd-keys",
                "sessionId": "backfill",
                "timestamp": 4,
                "metricName": "OddKeys",
                "metricAttributes": {"nul\u0000key": "x", "tab\tkey": "y", "quote\"key'": "z"},
                "_overflow": "a field of that name",
            },
        ]
    ]
    malformed = [
        b'{"eventId": "cut-off", "timestamp": 1\n',
        b"not json at all\n",
        b"[1, 2]\n",
        b"\n",
    ]
    write_object(
        root, 10, "stream-1-2024-02-03-10-00-00-a.gz", batches[0] + batches[1] + batches[2]
    )
    write_object(
        root, 10, "stream-1-2024-02-03-10-05-00-b.gz", batches[3] + batches[4] + [batches[0][3]]
    )
    write_object(root, 10, "stream-1-2024-02-03-10-30-00-c.gz", retry + batches[5] + malformed[:2])
    write_object(
        root, 11, "stream-1-2024-02-03-11-00-00-d.gz", elsewhere + malformed[2:] + batches[6]
    )
    write_object(root, 11, "stream-1-2024-02-03-11-10-00-e.gz", [b for x in batches[7:] for b in x])
    # Same event id in another session: a different event, kept.
    other = json.loads(batches[1][0])
    other["sessionId"] = "another-session"
    write_object(root, 12, "stream-1-2024-02-03-12-00-00-f.gz", [orjson.dumps(other) + b"\n"])
    # Another day: never read.
    stray = root / "raw" / "2024" / "02" / "04" / "00" / "g.gz"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(gzip.compress(batches[0][0]))


# --- the two CSVs -----------------------------------------------------------------------


def lambda_csv(root: Path, max_columns: int) -> tuple[list[str], list[list[str]], Path]:
    out = root / "csv" / f"{DAY}_combined.csv"
    result = CliRunner().invoke(
        cli,
        [
            *("export", "--date", DAY, "--source", str(root), "--out", str(out)),
            *("--max-columns", str(max_columns), "--jobs", "1"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows, out


def athena_csv(
    con: duckdb.DuckDBPyConnection, max_columns: int
) -> tuple[list[str], list[list[str | None]]]:
    _, found = run_query(con, build_columns_query(DB, TABLE, DAY))
    query = daily_csv_query(DB, TABLE, DAY, parse_column_counts(found), max_columns=max_columns)
    header, rows = run_query(con, query.sql)
    shown = [header_cell(column, True) for column in query.columns]
    assert header == shown, "the result's columns are the header the builder chose"
    return header, rows


# --- comparing, cell by cell -----------------------------------------------------------


@dataclass(frozen=True)
class Documented:
    """A difference ATHENA.md lists: its heading there, and whether a cell pair is one."""

    title: str
    matches: Callable[[str, str], bool]


def _same_json_value(lambda_cell: str, athena_cell: str) -> bool:
    """A list (or an object past the flattening depth) with the same JSON value whose
    numbers the engine prints its own way (``1e+16`` / ``10000000000000000.0``); in the
    overflow cell, such a list's text is one of the object's values."""
    if not lambda_cell.startswith(("[", "{")):
        return False
    try:
        want, have = json.loads(lambda_cell), json.loads(athena_cell)
    except ValueError:
        return False
    if want == have:
        return True
    if not isinstance(want, dict) or not isinstance(have, dict) or want.keys() != have.keys():
        return False
    return all(want[k] == have[k] or _same_json_value(str(want[k]), str(have[k])) for k in want)


DOCUMENTED = [Documented("Numbers inside lists", _same_json_value)]
ROW_ORDER = "Row order"


@dataclass
class Comparison:
    rows: int = 0
    cells: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)

    def skip(self, title: str, example: str) -> None:
        self.skipped[title] += 1
        self.examples.setdefault(title, example)

    def summary(self, max_columns: int) -> str:
        listed = "; ".join(
            f"{title}: {count} (e.g. {self.examples[title][:160]})"
            for title, count in self.skipped.items()
        )
        return (
            f"Athena SQL on DuckDB vs python -m exporter export, --max-columns {max_columns}: "
            f"{self.rows} rows, {self.cells} cells compared; documented differences "
            f"skipped (docs/ATHENA.md): {listed or 'none'}"
        )


class DocumentedDifferences(UserWarning):
    """What the engine comparison skipped, shown in the test run's warnings summary."""


def _row_key(header: list[str], row: list[str]) -> tuple[str, ...]:
    event = row[header.index("eventId")] if "eventId" in header else ""
    if event:
        return ("event", row[header.index("sessionId")], event)
    return ("row", *row)


def compare(
    header: list[str], lambda_rows: list[list[str]], athena_rows: list[list[str | None]]
) -> Comparison:
    result = Comparison()
    athena = [["" if cell is None else cell for cell in row] for row in athena_rows]
    assert len(athena) == len(lambda_rows), "the same number of rows after deduplication"
    lambda_keys = [_row_key(header, row) for row in lambda_rows]
    athena_keys = [_row_key(header, row) for row in athena]
    assert Counter(lambda_keys) == Counter(athena_keys), "the same events kept"
    if lambda_keys != athena_keys:
        moved = sum(a != b for a, b in zip(lambda_keys, athena_keys, strict=True))
        result.skip(ROW_ORDER, f"{moved} rows in another place")
    by_key: dict[tuple[str, ...], list[list[str]]] = {}
    for key, row in zip(athena_keys, athena, strict=True):
        by_key.setdefault(key, []).append(row)
    for key, expected in zip(lambda_keys, lambda_rows, strict=True):
        # Keys can repeat (event id 42 and "42" print alike): take the closest row.
        candidates = by_key[key]
        got = max(
            candidates, key=lambda row: sum(a == b for a, b in zip(row, expected, strict=True))
        )
        candidates.remove(got)
        result.rows += 1
        for column, want, have in zip(header, expected, got, strict=True):
            result.cells += 1
            if want == have:
                continue
            documented = next((d for d in DOCUMENTED if d.matches(want, have)), None)
            if documented is None:
                result.mismatches.append(f"{key} {column}: Lambda {want!r}, Athena {have!r}")
            else:
                result.skip(documented.title, f"{column} {want!r} / {have!r}")
    return result


@pytest.fixture(scope="module")
def day_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("generated-day")
    generated_day(root)
    return root


@pytest.fixture
def day_con(con: duckdb.DuckDBPyConnection, day_root: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB with the generated day behind the Glue table's mirror."""
    mirror_glue_table(con, day_root)
    return con


@pytest.mark.parametrize("max_columns", [1000, 24], ids=["all-columns", "column-budget"])
def test_athena_sql_gives_the_lambda_csv(
    day_root: Path, day_con: duckdb.DuckDBPyConnection, max_columns: int
) -> None:
    lambda_header, lambda_rows, _ = lambda_csv(day_root, max_columns)
    header, rows = athena_csv(day_con, max_columns)
    assert header == lambda_header
    result = compare(header, lambda_rows, rows)
    assert not result.mismatches, "\n".join(result.mismatches[:20])
    assert result.rows > 100 and result.cells == result.rows * len(header)
    for title in result.skipped:
        assert f"### {title}" in ATHENA_DOC, f"{title} is not documented in ATHENA.md"
    counts = f"{result.rows} rows and {result.cells:,} cells"
    assert counts in ATHENA_DOC, f"ATHENA.md should give the comparison's counts: {counts}"
    warnings.warn(DocumentedDifferences(result.summary(max_columns)), stacklevel=1)


def test_bad_lines_query_names_the_objects_the_lambda_reported(
    day_root: Path, day_con: duckdb.DuckDBPyConnection
) -> None:
    _, _, out = lambda_csv(day_root, 1000)
    errors = out.with_name(out.name.removesuffix(".csv") + ".errors.jsonl")
    reported = Counter(
        Path(json.loads(line)["source"]).name for line in errors.read_text().splitlines()
    )
    header, rows = run_query(day_con, build_bad_lines_query(DB, TABLE, DAY))
    assert header == ["object", "bad_lines", "lines"]
    found = {Path(str(path)).name: int(str(bad)) for path, bad, _ in rows}
    assert (
        found
        == dict(reported)
        == {
            "stream-1-2024-02-03-10-30-00-c.gz": 2,
            "stream-1-2024-02-03-11-00-00-d.gz": 1,
        }
    )
    lines = {Path(str(path)).name: int(str(count)) for path, _, count in rows}
    # 6 records from elsewhere, "[1, 2]", a batch of 8; the blank line does not count
    assert lines["stream-1-2024-02-03-11-00-00-d.gz"] == 6 + 1 + 8
