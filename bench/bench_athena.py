"""Bytes a typical query scans on the raw table vs the Parquet copy, for a generated day.

Generates (once, cached under bench/data/, shared with bench_export.py) a day of N
events in 10 gzip objects, then builds that day's Parquet copy with the daily
build's own SQL (``chalicelib.athena.parquet``, transpiled by sqlglot and run on DuckDB
over the same gzip files, as the tests' Athena stand-in runs it), written as ZSTD
Parquet as Athena's UNLOAD writes it. For two typical questions it reports:

- the raw table (``events``, one text column): Athena reads every gzip byte of the
  day's objects whatever the query names (text has no columns to skip);
- the Parquet table (``events_daily``): Athena reads the column chunks the query
  names (their compressed sizes from the file's own metadata) plus the footer;

and runs both on DuckDB: the answers differ only by the duplicates the Parquet copy
(like the daily CSV) leaves out.

    .venv/bin/python bench/bench_athena.py [--events 2000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_export import DAY, OBJECTS, generate_once  # noqa: E402
from chalicelib.athena.parquet import build_parquet_select  # noqa: E402
from tests.test_athena_queries import mirror_glue_table, to_duckdb  # noqa: E402

DB, TABLE = "owned_analytics", "events"
# Both count rows: the raw table holds every copy of a retried event, the Parquet copy
# one per (sessionId, eventId) as the daily CSV, so the raw counts are a little higher.
_EVENTS = "count(*)"
# (question, SQL on the raw lines table, SQL on the Parquet copy, Parquet columns read)
QUERIES = [
    (
        "events per metricName",
        f"SELECT json_extract_scalar(line, '$.metricName') AS m, {_EVENTS} AS n FROM {{raw}} "
        "WHERE year = '2026' AND month = '11' AND day = '27' GROUP BY 1 ORDER BY 1",
        "SELECT metricName AS m, count(*) AS n FROM {parquet} GROUP BY 1 ORDER BY 1",
        ["metricName"],
    ),
    (
        "clicks per language (an attribute and a fixed column)",
        f"SELECT json_extract_scalar(line, '$.language') AS l, {_EVENTS} AS n FROM {{raw}} "
        "WHERE year = '2026' AND month = '11' AND day = '27' "
        "AND json_extract_scalar(line, '$.metricAttributes.action') = 'click' "
        "GROUP BY 1 ORDER BY 1",
        "SELECT language AS l, count(*) AS n FROM {parquet} "
        "WHERE element_at(attributes, 'action') = 'click' GROUP BY 1 ORDER BY 1",
        ["language", "attributes"],
    ),
]


def column_bytes(con: duckdb.DuckDBPyConnection, path: Path, columns: list[str]) -> int:
    """Compressed bytes of the named columns' chunks (a map's key and value leaves)."""
    rows = con.execute(
        f"SELECT path_in_schema, total_compressed_size FROM parquet_metadata('{path}')"
    ).fetchall()
    wanted = {c.lower() for c in columns}
    return sum(int(size) for name, size in rows if str(name).split(",")[0].lower() in wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / f"day-v2-{args.events}"
    generate_once(
        data / "raw",
        [
            sys.executable,
            str(ROOT / "bench" / "bench_export.py"),
            "--events",
            str(args.events),
            "--generate-only",
        ],
        f"{args.events:,} events in {OBJECTS} gzip objects",
    )
    gzip_bytes = sum(p.stat().st_size for p in (data / "raw").rglob("*.gz"))
    work = Path(tempfile.mkdtemp(prefix="bench-athena-"))
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute(f"SET temp_directory = '{work}'")
    con.execute("SET preserve_insertion_order = true")
    mirror_glue_table(con, data)
    raw_json_bytes = con.execute(f"SELECT sum(strlen(line) + 1) FROM {DB}.{TABLE}").fetchone()[0]  # type: ignore[index]
    parquet = work / "day.parquet"
    started = time.perf_counter()
    select = to_duckdb(build_parquet_select(DB, TABLE, DAY))
    con.execute(f"COPY ({select}) TO '{parquet}' (FORMAT parquet, COMPRESSION zstd)")
    built = time.perf_counter() - started
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{parquet}')").fetchone()[0]  # type: ignore[index]
    parquet_bytes = parquet.stat().st_size
    print(f"day: {args.events:,} events generated, {rows:,} rows after deduplication")
    print(
        f"raw: {gzip_bytes:,} bytes gzip in {OBJECTS} objects ({gzip_bytes / args.events:.1f} "
        f"B/event); {raw_json_bytes:,} bytes of JSON lines"
    )
    print(
        f"parquet (ZSTD): {parquet_bytes:,} bytes ({parquet_bytes / gzip_bytes:.2f} x the gzip, "
        f"{parquet_bytes / raw_json_bytes:.3f} x the JSON); built in {built:.0f} s on DuckDB"
    )
    con.execute(f"CREATE VIEW events_daily AS SELECT * FROM read_parquet('{parquet}')")
    print()
    print(f"{'query':<55} {'raw scans':>14} {'parquet scans':>14} {'ratio':>7}")
    for question, raw_sql, parquet_sql, columns in QUERIES:
        raw_answer = con.execute(to_duckdb(raw_sql.format(raw=f"{DB}.{TABLE}"))).fetchall()
        parquet_answer = con.execute(
            to_duckdb(parquet_sql.format(parquet="events_daily"))
        ).fetchall()
        extra = sum(int(n) for _, n in raw_answer) - sum(int(n) for _, n in parquet_answer)
        groups = [g for g, _ in raw_answer] == [g for g, _ in parquet_answer]
        same = f"same groups, raw counts {extra:,} duplicate(s) more" if groups else "GROUPS DIFFER"
        scanned = column_bytes(con, parquet, columns)
        print(
            f"{question:<55} {gzip_bytes:>14,} {scanned:>14,} {gzip_bytes / scanned:>6.0f}x"
            f"  ({same})"
        )
    con.close()


if __name__ == "__main__":
    main()
