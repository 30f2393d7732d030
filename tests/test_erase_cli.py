"""python -m exporter erase through click's CliRunner, and the Athena locator: its calls on
moto, and what its query finds when DuckDB runs it over raw objects."""

from __future__ import annotations

import gzip
import json
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner

from chalicelib.athena.locate import build_locate_query, locate_with_athena, partition_filter
from chalicelib.erase import ErasureError, ErasureRequest
from chalicelib.erase import run as erase_module
from chalicelib.storage.local import LocalStore
from chalicelib.storage.s3 import S3Store
from exporter.cli import cli
from tests.conftest import aws_client
from tests.erase_helpers import erased_lake, fill, local_snapshot, request, s3_current
from tests.test_athena_queries import mirror_glue_table, run_query

SESSION_ARGS = ["--session-id", "sess-1", "--from", "2026-11-27", "--to", "2026-11-28"]
RESULTS = "s3://athena-results-bucket/erase/"


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(erase_module, "SCRYPT_COST", {"n": 2, "r": 1, "p": 1})


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    fill(LocalStore(root))
    return root


def test_dry_run_then_erase_then_nothing_left(lake: Path) -> None:
    before = local_snapshot(lake, with_erasure=True)
    dry = invoke("erase", *SESSION_ARGS, "--source", str(lake), "--dry-run", "--jobs", "1")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines() == [
        "would erase 6 event(s), 2 bad line(s), 2 rejected body(ies) from 4 of 5 object(s) read",
        "  raw/2026/11/27/10/a.gz: 3 event(s), 1 bad line(s)",
        "  raw/2026/11/27/11/b.ndjson: 1 event(s)",
        "  raw/2026/11/28/00/c.gz: 1 event(s), 1 bad line(s)",
        "  rejected/2026/11/27/10/rejected-1.ndjson: 1 event(s), 2 rejected body(ies)",
        "nothing was changed (--dry-run)",
    ]
    assert local_snapshot(lake, with_erasure=True) == before

    done = invoke("erase", *SESSION_ARGS, "--source", str(lake), "--jobs", "1")
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[:2] == [
        "erased 6 event(s), 2 bad line(s), 2 rejected body(ies) from 4 object(s) "
        "(3 raw, 1 rejected) of 5 read",
        "rebuilt 3 CSV part(s) and 2 daily file(s); deleted 2 errors object(s) and "
        "0 old object version(s)",
    ]
    assert lines[2].startswith(f"audit record: {lake}/erasure/")
    assert "scanning" not in done.output  # no progress bar off a terminal

    again = invoke("erase", *SESSION_ARGS, "--source", str(lake), "--jobs", "1")
    assert (
        again.output.splitlines()[0]
        == "erased 0 event(s) from 0 object(s) (0 raw, 0 rejected) of 5 read"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-11-27"], "nothing to look for"),
        (["--match", "device", "--from", "2026-11-27"], "is not FIELD=VALUE"),
        (["--match", "device=", "--from", "2026-11-27"], "empty value"),
        (["--session-id", "s", "--from", "2026-11-28", "--to", "2026-11-27"], "before it starts"),
        (["--session-id", "s", "--from", "yesterday"], "is not a date"),
        (["--session-id", "s", "--from", "2026-11-27", "--locate-with-athena"], "needs an s3://"),
    ],
)
def test_bad_requests_are_one_line(lake: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["erase", *args, "--source", str(lake)])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_erase_on_s3(s3: Any, bucket: str, moto_endpoint: str) -> None:
    fill(S3Store(s3, bucket))
    result = invoke(
        "erase", *SESSION_ARGS, "--source", f"s3://{bucket}", "--endpoint-url", moto_endpoint
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("erased 6 event(s)")
    assert f"audit record: s3://{bucket}/erasure/" in result.output
    assert s3_current(s3, bucket) == erased_lake()


def test_a_missing_bucket_is_one_line(moto_endpoint: str) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "erase",
            *SESSION_ARGS,
            "--source",
            "s3://no-such-bucket",
            "--endpoint-url",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: bucket no-such-bucket does not exist"


# --- Athena ----------------------------------------------------------------------------


def test_locate_query_text() -> None:
    locate = ErasureRequest.build(
        first=date(2026, 10, 30),
        last=date(2026, 12, 1),
        session_ids=["s'1", "s2"],
        event_ids=["e1"],
        matches=[("device", "kiosk-17")],
    )
    assert build_locate_query("owned_analytics", "events", locate) == (
        "-- Raw objects holding events to erase, 2026-10-30 to 2026-12-01 (UTC).\n"
        'SELECT DISTINCT "$path" AS path\n'
        'FROM "owned_analytics"."events"\n'
        """WHERE (("year" = '2026' AND "month" = '10' AND "day" IN ('30', '31')) """
        """OR ("year" = '2026' AND "month" = '11') """
        """OR ("year" = '2026' AND "month" = '12' AND "day" IN ('01')))\n"""
        """  AND (json_extract_scalar("line", '$["device"]') IN ('kiosk-17')\n"""
        """    OR strpos("line", 'kiosk-17') > 0\n"""
        """    OR json_extract_scalar("line", '$["eventId"]') IN ('e1')\n"""
        """    OR strpos("line", 'e1') > 0\n"""
        """    OR json_extract_scalar("line", '$["sessionId"]') IN ('s''1', 's2')\n"""
        """    OR strpos("line", 's''1') > 0\n"""
        """    OR strpos("line", 's2') > 0)"""
    )
    assert partition_filter(date(2024, 2, 1), date(2024, 2, 29)) == (
        """("year" = '2024' AND "month" = '02')"""
    )
    # Any top-level field can be located: the table holds whole lines.
    assert """'$["note"]'""" in build_locate_query("d", "t", request(matches=[("note", "x")]))


def _seed_athena_results(endpoint: str, rows: list[list[str]]) -> None:
    payload = {
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": cell} for cell in row]} for row in rows],
                "column_info": [{"Name": "path", "Type": "varchar"}],
            }
        ]
    }
    request_ = urllib.request.Request(
        endpoint + "/moto-api/static/athena/query-results",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request_, timeout=10) as answer:
        assert answer.status < 300


def test_locate_refuses_another_bucket(moto_endpoint: str) -> None:
    athena = aws_client("athena", moto_endpoint)
    _seed_athena_results(moto_endpoint, [["path"], ["s3://elsewhere/raw/2026/11/27/10/a.gz"]])
    with pytest.raises(ErasureError, match="reads s3://elsewhere/, not the --source bucket mine"):
        locate_with_athena(
            athena, request(), bucket="mine", workgroup=None, output_location=RESULTS
        )


def test_locate_with_athena_reads_only_what_it_found(
    s3: Any, bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(S3Store(s3, bucket))
    monkeypatch.setenv("AWS_ENDPOINT_URL_ATHENA", moto_endpoint)
    _seed_athena_results(
        moto_endpoint,
        [
            ["path"],
            [f"s3://{bucket}/raw/2026/11/27/10/a.gz"],
            [f"s3://{bucket}/raw/2026/11/26/23/outside.ndjson"],
        ],
    )
    result = invoke(
        "erase",
        *SESSION_ARGS,
        "--source",
        f"s3://{bucket}",
        "--endpoint-url",
        moto_endpoint,
        "--locate-with-athena",
        "--athena-workgroup",
        "",
        "--athena-output-location",
        RESULTS,
    )
    assert result.exit_code == 0, result.output
    # Raw a (located) and the rejected objects (always read) lost their matches; raw b,
    # which Athena did not name, was not read; the object outside the range is left.
    assert result.output.startswith(
        "erased 4 event(s), 1 bad line(s), 2 rejected body(ies) from 2 object(s) "
        "(1 raw, 1 rejected) of 2 read"
    )
    assert "note: Athena located 1 object(s) outside" in result.output
    raw_b = s3.get_object(Bucket=bucket, Key="raw/2026/11/27/11/b.ndjson")["Body"].read()
    assert b"gone-4" in raw_b
    athena = aws_client("athena", moto_endpoint)
    # The moto server is shared: other tests' queries may be listed too.
    queries = [
        athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Query"]
        for execution in athena.list_query_executions()["QueryExecutionIds"]
    ]
    assert build_locate_query("owned_analytics", "events", request()) in queries
    [audit_line] = [x for x in result.output.splitlines() if x.startswith("audit record: ")]
    audit_key = audit_line.removeprefix(f"audit record: s3://{bucket}/")
    audit = json.loads(s3.get_object(Bucket=bucket, Key=audit_key)["Body"].read())
    assert audit["request"]["locatedBy"] == "athena"


# Raw objects of a day range, each with what it holds; which of them a request must locate.
LOCATOR_LAKE: dict[str, list[str | dict[str, Any]]] = {
    "raw/2026/11/27/10/plain.gz": [{"eventId": "e1", "sessionId": "sess-1"}],
    # Only JSON's escapes spell the session: the text does not hold it, the field does.
    "raw/2026/11/27/11/escaped.gz": ['{"eventId":"e2","sessionId":"\\u0073ess-1"}'],
    "raw/2026/11/27/12/other.gz": [
        {"eventId": "e3", "sessionId": "sess-2", "device": "kiosk-17"},
        {"eventId": "e4", "sessionId": "sess-2", "device": "k'1"},
    ],
    # A line that is not JSON does not stop the query, and is located by its text.
    "raw/2026/11/28/00/junk.gz": ["not json at all, mentions sess-1", {"eventId": "e5"}],
    # The value elsewhere than in the field: located too (the scan after decides exactly).
    "raw/2026/11/28/05/nested.gz": [{"eventId": "e6", "metricAttributes": {"note": "e-9"}}],
    "raw/2026/11/26/23/before.gz": [{"eventId": "e7", "sessionId": "sess-1"}],
    "raw/2026/11/29/00/after.gz": [{"eventId": "e8", "sessionId": "sess-1"}],
}
NOV_27_28 = {"first": date(2026, 11, 27), "last": date(2026, 11, 28)}


@pytest.mark.parametrize(
    ("criteria", "located"),
    [
        ({"session_ids": ["sess-1"]}, {"plain", "escaped", "junk"}),
        ({"matches": [("device", "kiosk-17")]}, {"other"}),
        ({"matches": [("device", "k'1")]}, {"other"}),
        ({"event_ids": ["e-9"]}, {"nested"}),
        ({"event_ids": ["e1", "e5"]}, {"plain", "junk"}),
        ({"session_ids": ["sess-404"]}, set()),
        (
            {"session_ids": ["sess-1"], "first": date(2026, 11, 26), "last": date(2026, 11, 26)},
            {"before"},
        ),
        (
            {"session_ids": ["sess-1"], "first": date(2026, 11, 26), "last": date(2026, 11, 30)},
            {"before", "plain", "escaped", "junk", "after"},
        ),
    ],
    ids=[
        "session",
        "device",
        "quoted-value",
        "value-elsewhere",
        "two-event-ids",
        "no-match",
        "day-before",
        "wider-range",
    ],
)
def test_the_locate_query_finds_the_objects_holding_a_match(
    tmp_path: Path, criteria: dict[str, Any], located: set[str]
) -> None:
    """The locator's SQL, run over gzip'd raw objects through the Glue table's mirror on
    DuckDB (tests/test_athena_queries.py), returns exactly the objects that may hold a match
    in the range: none missed, none from outside the range."""
    for key, lines in LOCATOR_LAKE.items():
        text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(gzip.compress(text.encode()))
    sql = build_locate_query(
        "owned_analytics", "events", ErasureRequest.build(**NOV_27_28 | criteria)
    )
    # Athena's json_extract_scalar gives NULL for a line that is not JSON; DuckDB's raises.
    with_athena_json = sqlglot.parse_one(sql, read="athena").transform(
        lambda node: (
            sqlglot.exp.Try(this=node.copy())
            if isinstance(node, sqlglot.exp.JSONExtractScalar)
            and not isinstance(node.parent, sqlglot.exp.Try)
            else node
        )
    )
    con = duckdb.connect()
    try:
        mirror_glue_table(con, tmp_path)
        header, rows = run_query(con, with_athena_json.sql(dialect="trino"))
    finally:
        con.close()
    assert header == ["path"]
    keys = [Path(str(path)).relative_to(tmp_path).as_posix() for [path] in rows]
    assert sorted(keys) == sorted(k for k in LOCATOR_LAKE if k.split("/")[-1][:-3] in located)
