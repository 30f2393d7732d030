"""chalicelib/athena/runner.py: running a query and waiting for it, scripted, then on moto."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any, cast

import boto3
import pytest
from botocore.exceptions import ClientError
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

DB = "owned_analytics"
TABLE = "events"
DAY = "2024-02-03"
RESULTS = "s3://analytics-results/athena-results/"


# --- columns named on the command line ------------------------------------------------


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


def seed_results(endpoint: str, *results: list[list[str]]) -> None:
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
    seed_results(aws_env, [COLUMNS_HEADER, ["attr_action", "3", "a"], ["uaBrowser", "2", "b"]])
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
    seed_results(aws_env, [BAD_LINES_HEADER, [BAD_OBJECT, "2", "120"]])
    runner = Runner(athena, output_location=RESULTS, sleep=lambda _: None)
    found, location = find_bad_objects(runner, DB, TABLE, DAY)
    assert found == [BadObject(BAD_OBJECT, 2, 120)]
    assert location.startswith(RESULTS)


def test_moto_fetch_rows(athena: Any, aws_env: str) -> None:
    seed_results(aws_env, [["key_path"], ['["a"]']])
    execution = execute_query(athena, "SELECT 1", output_location=RESULTS)
    assert list(fetch_rows(athena, execution.query_execution_id)) == [["key_path"], ['["a"]']]


# --- the click command ----------------------------------------------------------------
