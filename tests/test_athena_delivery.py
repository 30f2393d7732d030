"""The day's delivery counts as Athena SQL, run on DuckDB, against chalicelib.delivery.measure's."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import duckdb

from chalicelib.athena.delivery import build_delivery_query, delivery_log_record
from chalicelib.delivery.measure import measure_delivery
from chalicelib.storage.local import LocalStore
from tests.test_athena_queries import DB, TABLE, mirror_glue_table, run_query, to_duckdb

DAY = dt.date(2024, 2, 3)


def line(session: Any, seq: Any, event: Any, at: Any, **fields: Any) -> bytes:
    record = {"sessionId": session, "seq": seq, "eventId": event, "timestamp": 1, **fields}
    record["serverTimestamp"] = at
    return json.dumps({k: v for k, v in record.items() if v is not _GONE}).encode() + b"\n"


_GONE = object()


def write(root: Path, day: str, hour: str, name: str, lines: list[bytes]) -> None:
    path = root / "raw" / day / hour / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(lines)))


def a_day(root: Path) -> None:
    """Gaps inside and at the end, copies, unnumbered events and odd records, sessions
    across both midnights, and a day outside the range."""
    t = "2024-02-03T10:00:{:02d}.000Z".format
    lines: list[bytes] = []
    for n in range(40):  # 40 sessions of up to 12 numbers, some missing
        sent = [k for k in range(1, 13) if (k * 7 + n) % 11 and k <= 3 + n % 10]
        for k in sent:
            send = 0 if k <= 4 else 1 if k <= 8 else 2
            lines.append(line(f"s{n}", k, f"s{n}-e{k}", t(send * 10 + n % 5)))
        if n % 4 == 0 and sent:
            lines.append(line(f"s{n}", sent[0], f"s{n}-e{sent[0]}", t(59)))  # a copy
    lines += [
        line("old", _GONE, "old-1", t(1)),  # an older client: no number
        line("old", _GONE, "old-1", t(2)),
        line("odd", 2.0, "f", t(1)),
        line("odd", "3", "g", t(1)),
        line("odd", 0, "h", t(1)),
        line("odd", 2**60, "i", t(1)),
        line("odd", 5, _GONE, t(1)),
        line("odd", 5, None, t(2)),
        line("odd", 7, 42, t(3)),
        line("odd", 7, "42", t(3)),
        line(17, 1, "numeric-session", t(1)),
        line("late", 1, "l1", "not a time"),
        line("late", 3, "l3", 20240203),
        b"not json\n",
        b"[1, 2]\n",
    ]
    write(root, "2024/02/03", "10", "a.gz", lines)
    write(root, "2024/02/02", "23", "b.gz", [line("eve", 1, "v1", "2024-02-02T23:59:00.000Z")])
    write(root, "2024/02/03", "00", "c.gz", [line("eve", 3, "v3", "2024-02-03T00:00:01.000Z")])
    write(root, "2024/02/03", "23", "d.gz", [line("night", 1, "n1", "2024-02-03T23:59:00.000Z")])
    write(root, "2024/02/04", "00", "e.gz", [line("night", 4, "n4", "2024-02-04T00:00:01.000Z")])
    write(root, "2024/02/04", "05", "f.gz", [line("night", 9, "n9", "2024-02-04T05:00:00.000Z")])


def test_the_query_gives_the_daily_log_line(tmp_path: Path) -> None:
    a_day(tmp_path)
    expected = measure_delivery(LocalStore(tmp_path), [DAY]).days[0].log_record()
    assert expected["gapsInside"] and expected["gapsAtEnd"] and expected["duplicates"]
    assert expected["unnumbered"] and expected["sessions"] > 30
    con = duckdb.connect()
    try:
        mirror_glue_table(con, tmp_path)
        header, rows = run_query(con, build_delivery_query(DB, TABLE, DAY))
    finally:
        con.close()
    assert header[:2] == ["sessions", "received"] and len(rows) == 1
    assert delivery_log_record(DAY, list(rows[0])) == expected


def test_a_day_without_events_is_zeros_and_no_rate(tmp_path: Path) -> None:
    write(tmp_path, "2024/02/09", "10", "a.gz", [line("s", 1, "e", "2024-02-09T10:00:00.000Z")])
    con = duckdb.connect()
    try:
        mirror_glue_table(con, tmp_path)
        _, rows = run_query(con, build_delivery_query(DB, TABLE, DAY))
    finally:
        con.close()
    record = delivery_log_record(DAY, list(rows[0]))
    assert "rate" not in record and record["sessions"] == record["received"] == 0


def test_the_query_is_trino_that_duckdb_runs_unchanged() -> None:
    assert "SELECT" in to_duckdb(build_delivery_query(DB, TABLE, "2024-02-03"))
