"""exporter.athena: the runner (scripted, then against moto) and the athena-query command."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from moto.server import ThreadedMotoServer

from chalicelib.athena import (
    AthenaQueryError,
    AthenaQueryTimeout,
    BadObject,
    Runner,
    build_columns_query,
    build_daily_csv_query,
    discover_columns,
    execute_query,
    fetch_rows,
    find_bad_objects,
)
from chalicelib.athena.delivery import DELIVERY_COLUMNS
from chalicelib.athena.on_demand import attribute_column, named_columns, parse_attribute_option
from exporter.athena.command import athena_query
from tests.test_athena_sql import output_names

DB = "owned_analytics"
TABLE = "events"
DAY = "2024-02-03"
RESULTS = "s3://analytics-results/athena-results/"


# --- columns named on the command line ------------------------------------------------


def test_attribute_options_and_columns() -> None:
    assert parse_attribute_option("action") == ("action",)
    assert parse_attribute_option('["nested", "depth"]') == ("nested", "depth")
    assert attribute_column(("nested", "depth")) == "attr_nested_depth"
    with pytest.raises(ValueError, match="JSON array"):
        parse_attribute_option("[not json")
    for bad in ("[1, 2]", "[]"):
        with pytest.raises(ValueError, match="strings"):
            parse_attribute_option(bad)
    columns = named_columns([("a",), ("n", "d")], ["screenSize"])
    assert list(columns) == [
        "appVersion",
        "derivedTimestamp",
        "eventId",
        "gitCommitSha",
        "seq",
        "screenSize",
        "attr_a",
        "attr_n_d",
    ]
    for bad in ("", "attr_x", "_overflow"):
        with pytest.raises(ValueError, match="cannot be a top-level column"):
            named_columns([], [bad])


# --- execute_query with a scripted client -------------------------------------------------


class ScriptedAthena:
    """Answers get_query_execution from a script of states; records every call."""

    def __init__(self, states: list[str], reason: str = "", location: str | None = None) -> None:
        self.states = states
        self.reason = reason
        self.location = location
        self.started: list[dict[str, Any]] = []
        self.stopped: list[str] = []
        self.polls = 0

    def start_query_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"QueryExecutionId": "qid-1"}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        state = self.states[min(self.polls, len(self.states) - 1)]
        self.polls += 1
        execution: dict[str, Any] = {
            "QueryExecutionId": QueryExecutionId,
            "Status": {"State": state},
        }
        if self.reason:
            execution["Status"]["StateChangeReason"] = self.reason
        if self.location:
            execution["ResultConfiguration"] = {"OutputLocation": self.location}
        return {"QueryExecution": execution}

    def stop_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:
        self.stopped.append(QueryExecutionId)
        return {}


def test_execute_query_polls_until_succeeded() -> None:
    fake = ScriptedAthena(["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"], location=RESULTS + "q.csv")
    sleeps: list[float] = []
    location = execute_query(
        cast(Any, fake),
        "SELECT 1",
        workgroup="wg",
        database=DB,
        poll_interval=0.5,
        sleep=sleeps.append,
    ).output_location
    assert location == RESULTS + "q.csv"
    assert sleeps == [0.5, 0.5, 0.5]
    assert fake.started == [
        {"QueryString": "SELECT 1", "WorkGroup": "wg", "QueryExecutionContext": {"Database": DB}}
    ]


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_execute_query_raises_on_failed_or_cancelled(state: str) -> None:
    fake = ScriptedAthena(
        ["RUNNING", state], reason="SYNTAX_ERROR: line 1:8:\nColumn 'x' cannot be resolved"
    )
    with pytest.raises(AthenaQueryError) as info:
        execute_query(cast(Any, fake), "SELECT x", output_location=RESULTS, sleep=lambda _: None)
    message = str(info.value)
    assert "\n" not in message
    assert state in message and "Column 'x' cannot be resolved" in message
    assert info.value.state == state
    assert info.value.query_execution_id == "qid-1"
    assert not isinstance(info.value, AthenaQueryTimeout)


def test_execute_query_timeout_stops_the_query() -> None:
    fake = ScriptedAthena(["RUNNING"])
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(AthenaQueryTimeout, match="still RUNNING after 5 s"):
        execute_query(
            cast(Any, fake),
            "SELECT 1",
            output_location=RESULTS,
            timeout=5,
            poll_interval=1,
            sleep=sleep,
            clock=clock,
        )
    assert fake.stopped == ["qid-1"]
    assert 5 <= fake.polls <= 7


def test_execute_query_needs_somewhere_for_results() -> None:
    fake = ScriptedAthena(["SUCCEEDED"])
    with pytest.raises(ValueError, match="workgroup or an output location"):
        execute_query(cast(Any, fake), "SELECT 1")
    with pytest.raises(ValueError, match="s3://"):
        execute_query(cast(Any, fake), "SELECT 1", output_location="/tmp/results")
    assert fake.started == []


def test_succeeded_without_location_is_an_error() -> None:
    fake = ScriptedAthena(["SUCCEEDED"])
    with pytest.raises(AthenaQueryError, match="no result location"):
        execute_query(cast(Any, fake), "SELECT 1", workgroup="wg", sleep=lambda _: None)


# --- against a moto server -----------------------------------------------------------


# --- against a moto server -----------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(
        endpoint + path,
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status < 300


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    _moto_api(moto_endpoint, "/moto-api/reset")
    return moto_endpoint


@pytest.fixture
def athena(aws_env: str) -> Any:
    return boto3.client(
        "athena",
        region_name="us-east-1",
        endpoint_url=aws_env,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _seed_results(endpoint: str, *results: list[list[str]]) -> None:
    """Rows for the next queries started, in order (moto runs no SQL)."""
    payload = {
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": cell} for cell in row]} for row in rows],
                "column_info": [{"Name": name, "Type": "varchar"} for name in rows[0]],
            }
            for rows in results
        ]
    }
    _moto_api(endpoint, "/moto-api/static/athena/query-results", payload)


COLUMNS_HEADER = ["column", "objects", "first"]
BAD_LINES_HEADER = ["object", "bad_lines", "lines"]
BAD_OBJECT = "s3://bucket/raw/2024/02/03/10/stream-1.gz"


def test_moto_execute_query_returns_result_csv_location(athena: Any) -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, ["timestamp", "attr_action"])
    execution = execute_query(athena, sql, output_location=RESULTS, database=DB)
    assert execution.output_location == f"{RESULTS}{execution.query_execution_id}.csv"
    assert execute_query(athena, sql, output_location=RESULTS).output_location.startswith(RESULTS)
    stored = athena.get_query_execution(QueryExecutionId=execution.query_execution_id)
    assert stored["QueryExecution"]["Query"] == sql


def test_moto_execute_query_in_workgroup(athena: Any) -> None:
    athena.create_work_group(
        Name="owned-analytics",
        Configuration={"ResultConfiguration": {"OutputLocation": RESULTS}},
    )
    location = execute_query(
        athena, "SELECT 1", workgroup="owned-analytics", output_location=RESULTS
    ).output_location
    assert location.startswith(RESULTS) and location.endswith(".csv")
    with pytest.raises(ClientError):
        execute_query(athena, "SELECT 1", workgroup="missing", output_location=RESULTS)


def test_moto_timeout_stops_query(athena: Any, aws_env: str) -> None:
    _moto_api(
        aws_env,
        "/moto-api/state-manager/set-transition",
        {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}},
    )
    try:
        with pytest.raises(AthenaQueryTimeout) as info:
            execute_query(
                athena, "SELECT 1", output_location=RESULTS, timeout=0.2, poll_interval=0.02
            )
        qid = info.value.query_execution_id
        assert qid
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        assert state["State"] == "CANCELLED"
    finally:
        _moto_api(
            aws_env, "/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"}
        )


def test_moto_discover_columns(athena: Any, aws_env: str) -> None:
    _seed_results(aws_env, [COLUMNS_HEADER, ["attr_action", "3", "a"], ["uaBrowser", "2", "b"]])
    runner = Runner(athena, output_location=RESULTS, sleep=lambda _: None)
    assert discover_columns(runner, DB, TABLE, DAY) == {
        "attr_action": (3, "a"),
        "uaBrowser": (2, "b"),
    }
    query = athena.get_query_execution(
        QueryExecutionId=athena.list_query_executions()["QueryExecutionIds"][0]
    )["QueryExecution"]["Query"]
    assert query == build_columns_query(DB, TABLE, DAY)


def test_moto_find_bad_objects(athena: Any, aws_env: str) -> None:
    _seed_results(aws_env, [BAD_LINES_HEADER, [BAD_OBJECT, "2", "120"]])
    runner = Runner(athena, output_location=RESULTS, sleep=lambda _: None)
    found, location = find_bad_objects(runner, DB, TABLE, DAY)
    assert found == [BadObject(BAD_OBJECT, 2, 120)]
    assert location.startswith(RESULTS)


def test_moto_fetch_rows(athena: Any, aws_env: str) -> None:
    _seed_results(aws_env, [["key_path"], ['["a"]']])
    execution = execute_query(athena, "SELECT 1", output_location=RESULTS)
    assert list(fetch_rows(athena, execution.query_execution_id)) == [["key_path"], ['["a"]']]


# --- the click command ----------------------------------------------------------------


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(athena_query, ["--date", DAY, *args])


def test_cli_prints_sql_without_running() -> None:
    result = run_cli("--attribute", "button", "--attribute", '["nested","depth"]')
    assert result.exit_code == 0, result.output
    assert output_names(result.stdout)[-2:] == ["attr_button", "attr_nested_depth"]
    assert 'FROM "owned_analytics"."events"' in result.stdout
    assert "discovered" not in result.stderr and "found" not in result.stderr


def test_cli_context_keys_become_columns() -> None:
    result = run_cli("--context-key", "uaBrowser", "--context-key", "country")
    assert result.exit_code == 0, result.output
    names = output_names(result.stdout)
    assert {"uaBrowser", "country", "eventId"} <= set(names)
    assert names.index("country") < names.index("uaBrowser")


def test_cli_without_columns_warns_on_stderr() -> None:
    result = run_cli("--database", "db", "--table", "t")
    assert result.exit_code == 0
    assert "no --attribute or --context-key given" in result.stderr
    assert result.stdout.startswith("-- Daily CSV")
    assert 'FROM "db"."t"' in result.stdout


def test_cli_max_columns_and_overflow() -> None:
    keys = [f"--attribute=k{n}" for n in range(5)]
    result = run_cli("--max-columns", "12", *keys)
    assert result.exit_code == 0, result.output
    assert output_names(result.stdout)[-1] == "_overflow"
    assert "in the JSON column _overflow" in result.stderr
    assert run_cli("--max-columns", "5").exit_code == 2  # below the fixed columns


def test_cli_bad_lines_prints_its_query() -> None:
    result = run_cli("--bad-lines")
    assert result.exit_code == 0, result.output
    assert output_names(result.stdout) == BAD_LINES_HEADER


def test_cli_unordered() -> None:
    result = run_cli("--unordered", "--attribute", "a")
    assert result.exit_code == 0
    assert not result.stdout.rstrip().splitlines()[-1].startswith("ORDER BY")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run"], "--run needs --workgroup or --output-location"),
        (["--output-location", "bucket/prefix"], "must be an s3:// URI"),
        (["--attribute", "[broken"], "not a JSON array"),
        (["--context-key", "attr_x"], "cannot be a top-level column"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_cli_bad_date_is_a_usage_error() -> None:
    result = CliRunner().invoke(athena_query, ["--date", "03/02/2024"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr or "%Y-%m-%d" in result.stderr


def moto_args(aws_env: str) -> list[str]:
    return [
        "--run",
        "--output-location",
        RESULTS,
        "--region",
        "us-east-1",
        "--endpoint-url",
        aws_env,
    ]


def test_cli_run_finds_columns_runs_and_reports_bad_lines(aws_env: str) -> None:
    _seed_results(
        aws_env,
        [COLUMNS_HEADER, ["attr_zeta", "1", "b"], ["uaBrowser", "2", "a"]],
        [["timestamp"]],  # the CSV query's (only its location is read)
        [BAD_LINES_HEADER, [BAD_OBJECT, "2", "120"]],
    )
    result = run_cli(*moto_args(aws_env))
    assert result.exit_code == 0, result.output
    assert "found 2 column(s) on 2024-02-03" in result.stderr
    assert "2 line(s) in 1 object(s) are not a JSON object" in result.stderr
    assert f"--   {BAD_OBJECT}\t2\t120" in result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(re.escape(RESULTS) + r"[0-9a-f-]+\.csv", lines[-1])
    names = output_names("\n".join(lines[:-1]))
    assert names[-2:] == ["uaBrowser", "attr_zeta"]


def test_cli_run_bad_lines_lists_objects(aws_env: str) -> None:
    _seed_results(aws_env, [BAD_LINES_HEADER, [BAD_OBJECT, "2", "120"]])
    result = run_cli("--bad-lines", *moto_args(aws_env))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == f"{BAD_OBJECT}\t2\t120"
    assert lines[-1].startswith(RESULTS)


def test_cli_delivery_prints_its_query() -> None:
    result = run_cli("--delivery")
    assert result.exit_code == 0, result.output
    assert list(DELIVERY_COLUMNS)[:2] == ["sessions", "received"]
    assert "WHERE first_day = '2024-02-03'" in result.stdout
    assert """"hour" = '23'""" in result.stdout and """"day" = '02'""" in result.stdout


def test_cli_run_delivery_prints_the_daily_log_line(aws_env: str) -> None:
    _seed_results(aws_env, [list(DELIVERY_COLUMNS), ["3", "9", "1", "1", "0", "2", "0", "1", "0"]])
    result = run_cli("--delivery", *moto_args(aws_env))
    assert result.exit_code == 0, result.output
    *_, line, location = result.stdout.strip().splitlines()
    assert json.loads(line) == {
        "event": "delivery",
        "date": "2024-02-03",
        "sessions": 3,
        "received": 9,
        "gaps": 1,
        "gapsInside": 1,
        "gapsAtEnd": 0,
        "duplicates": 2,
        "unnumbered": 0,
        "sessionsWithGaps": 1,
        "sessionsWithEndGaps": 0,
        "rate": 0.9,
    }
    assert location.startswith(RESULTS)


def test_cli_run_with_given_columns_skips_discovery(aws_env: str) -> None:
    result = run_cli("--attribute", "a", *moto_args(aws_env))
    assert result.exit_code == 0, result.output
    assert "found" not in result.stderr and "not a JSON object" not in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(RESULTS)


def test_cli_run_aws_error_is_one_line(aws_env: str) -> None:
    result = run_cli(
        *("--run", "--workgroup", "missing", "--attribute", "a"),
        *("--region", "us-east-1", "--endpoint-url", aws_env),
    )
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: ")
    assert "WorkGroup does not exist" in result.stderr
