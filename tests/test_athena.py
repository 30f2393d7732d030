"""exporter.athena: the SQL builders (pure) and the Athena runner (against moto)."""

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

from chalicelib.csv.columns import FIXED_COLUMNS
from exporter.athena import (
    AthenaQueryError,
    AthenaQueryTimeout,
    athena_query,
    attribute_column,
    build_attribute_keys_query,
    build_daily_csv_query,
    discover_attribute_keys,
    execute_query,
    fetch_rows,
    output_columns,
    parse_attribute_option,
    parse_attribute_paths,
    partition_predicates,
    quote_identifier,
    quote_literal,
    run_query,
)

DB = "owned_analytics"
TABLE = "events"
DAY = "2024-02-03"
RESULTS = "s3://analytics-results/athena-results/"

# --- helpers -------------------------------------------------------------------------

_SCAN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[(),]|[^'\"(),]+")


def select_aliases(sql: str) -> list[str]:
    """Column aliases of the final SELECT of a daily CSV query, in order.

    A small scanner that knows string literals and delimited identifiers, so keys
    holding quotes, commas, parentheses or newlines cannot confuse it.
    """
    final = sql.split("\nSELECT\n", 1)[1].rsplit("\nFROM day_events", 1)[0]
    items: list[list[str]] = [[]]
    depth = 0
    for token in _SCAN.findall(final):
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif token == "," and depth == 0:
            items.append([])
            continue
        items[-1].append(token)
    assert depth == 0
    aliases = []
    for item in items:
        tokens = [t for t in item if t.strip()]
        assert tokens[-2].rstrip().endswith(" AS"), tokens
        alias = tokens[-1]
        assert alias.startswith('"') and alias.endswith('"')
        aliases.append(alias[1:-1].replace('""', '"'))
    return aliases


_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")


def sql_outside_quotes(sql: str) -> str:
    """The SQL with every string literal, delimited identifier and comment removed."""
    return _TOKENS.sub(" ", sql)


# --- column order and structure -------------------------------------------------------


def test_fixed_columns_lead_then_sorted_extras_then_sorted_attributes() -> None:
    sql = build_daily_csv_query(
        DB, TABLE, DAY, ["zeta", "action", ("nested", "depth"), "Button"], ["screenSize", "abTest"]
    )
    aliases = select_aliases(sql)
    assert aliases[:9] == [
        "timestamp",
        "serverTimestamp",
        "sessionId",
        "metricName",
        "value",
        "demoContentId",
        "device",
        "deviceCodename",
        "language",
    ]
    assert tuple(aliases[:9]) == FIXED_COLUMNS
    assert aliases[9:15] == sorted(
        ["abTest", "appVersion", "derivedTimestamp", "eventId", "gitCommitSha", "screenSize"]
    )
    assert aliases[15:] == ["attr_Button", "attr_action", "attr_nested_depth", "attr_zeta"]
    assert aliases == output_columns(
        ["zeta", "action", ("nested", "depth"), "Button"], ["screenSize", "abTest"]
    )


def test_columns_are_read_by_lower_case_name() -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, [], ["screenSize"])
    assert '"servertimestamp" AS "serverTimestamp"' in sql
    assert '"screensize" AS "screenSize"' in sql
    assert '"timestamp" AS "timestamp"' in sql


def test_context_keys_do_not_duplicate_known_columns() -> None:
    aliases = select_aliases(build_daily_csv_query(DB, TABLE, DAY, [], ["device", "eventId"]))
    assert len(aliases) == len(set(aliases)) == 13


def test_without_attributes_there_are_no_attr_columns() -> None:
    aliases = select_aliases(build_daily_csv_query(DB, TABLE, DAY))
    assert not [a for a in aliases if a.startswith("attr_")]
    assert "metricAttributes" not in aliases


def test_dedup_keeps_first_by_server_timestamp() -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, ["a"])
    assert (
        'row_number() OVER (PARTITION BY "eventid" ORDER BY "servertimestamp" ASC NULLS LAST' in sql
    )
    assert sql.rstrip().splitlines()[-2:] == [
        'WHERE "__rn" = 1',
        'ORDER BY "servertimestamp", "eventid"',
    ]
    assert '"eventid" IS NOT NULL' in sql
    unordered = build_daily_csv_query(DB, TABLE, DAY, ["a"], order_rows=False)
    assert 'ORDER BY "servertimestamp", "eventid"' not in unordered
    assert unordered.rstrip().endswith('WHERE "__rn" = 1')


def test_reads_only_that_days_partitions() -> None:
    sql = build_daily_csv_query(DB, TABLE, "2024-02-03", ["a"])
    assert "WHERE \"year\" = '2024' AND \"month\" = '02' AND \"day\" = '03'" in sql
    assert '"hour"' not in sql  # all 24 hours of the day
    assert sql.count('FROM "owned_analytics"."events"') == 1
    import datetime as dt

    assert partition_predicates(dt.date(2024, 12, 31)) == (
        "\"year\" = '2024' AND \"month\" = '12' AND \"day\" = '31'"
    )
    assert partition_predicates(dt.datetime(2024, 1, 5, 23, 59)) == partition_predicates(
        "2024-01-05"
    )


@pytest.mark.parametrize("bad", ["2024-13-01", "yesterday", "2024/02/03", ""])
def test_bad_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        build_daily_csv_query(DB, TABLE, bad)


def test_attribute_value_rendering() -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, ["action"])
    # scalars as text, JSON null as empty, objects/arrays as JSON text
    assert (
        "COALESCE(json_extract_scalar(element_at(\"__attrs\", 'action'), '$'), "
        "NULLIF(json_format(element_at(\"__attrs\", 'action')), 'null')) AS \"attr_action\""
    ) in sql
    assert 'TRY_CAST(TRY(json_parse("metricattributes")) AS MAP(VARCHAR, JSON)) AS "__attrs"' in sql


def test_nested_attribute_paths_flatten_with_underscore() -> None:
    assert attribute_column(("nested", "depth")) == "attr_nested_depth"
    assert attribute_column("plain") == "attr_plain"
    sql = build_daily_csv_query(DB, TABLE, DAY, [("nested", "depth")])
    assert (
        "element_at(TRY_CAST(element_at(\"__attrs\", 'nested') AS MAP(VARCHAR, JSON)), 'depth')"
        in sql
    )


def test_paths_flattening_to_one_column_share_it() -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, [("a", "b"), "a_b", ("a", "b")])
    aliases = select_aliases(sql)
    assert aliases.count("attr_a_b") == 1
    line = next(x for x in sql.splitlines() if x.endswith('AS "attr_a_b"'))
    assert line.strip().startswith("COALESCE(COALESCE(")


# --- quoting --------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    "key",
    [
        "it's",
        'say "hi"',
        "x')) AS y FROM t; DROP TABLE events; --",
        'x" FROM t; DROP TABLE events; --',
        "new\nline -- comment",
        "ümlaut ✓",
        "$.path[0]",
        "back\\slash'",
    ],
)
def test_odd_attribute_keys_stay_inside_quotes(key: str) -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, [key, ("outer", key)], [])
    assert quote_literal(key) in sql
    assert quote_identifier("attr_" + key) in sql
    outside = sql_outside_quotes(sql)
    assert "DROP" not in outside
    assert ";" not in outside
    # Every quote is balanced: nothing but whitespace/SQL follows the last alias.
    assert select_aliases(sql)[-2:] == sorted([f"attr_{key}", f"attr_outer_{key}"])


def test_odd_database_table_and_context_names_are_quoted() -> None:
    sql = build_daily_csv_query('my"db', "t; DROP TABLE x", DAY, [], ['ctx"; --'])
    assert 'FROM "my""db"."t; DROP TABLE x"' in sql
    assert '"ctx""; --" AS "ctx""; --"' in sql
    assert "DROP" not in sql_outside_quotes(sql)


@pytest.mark.parametrize("bad", [(), ["ok", "nul\x00"], "nul\x00"])
def test_bad_attribute_paths_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        build_daily_csv_query(DB, TABLE, DAY, [bad])
    with pytest.raises(TypeError):
        build_daily_csv_query(DB, TABLE, DAY, [("ok", 1)])  # type: ignore[list-item]


def test_empty_attribute_key_is_a_legal_json_key() -> None:
    assert select_aliases(build_daily_csv_query(DB, TABLE, DAY, [""]))[-1] == "attr_"


def test_empty_context_key_refused() -> None:
    with pytest.raises(ValueError):
        build_daily_csv_query(DB, TABLE, DAY, [], [""])


# --- attribute discovery --------------------------------------------------------------


def test_attribute_keys_query_shape() -> None:
    sql = build_attribute_keys_query(DB, TABLE, DAY, max_depth=3)
    assert "WHERE \"year\" = '2024' AND \"month\" = '02' AND \"day\" = '03'" in sql
    assert "CROSS JOIN UNNEST(m) AS u (k, v)" in sql
    assert "level3 AS (" in sql and "level4" not in sql
    assert "SELECT DISTINCT json_format(CAST(key_path AS JSON)) AS key_path" in sql
    # the deepest level keeps everything; shallower levels only their non-object leaves
    assert "SELECT key_path FROM level3\n" in sql
    assert "SELECT key_path FROM level1 WHERE TRY_CAST(v AS MAP(VARCHAR, JSON)) IS NULL" in sql
    assert "level2" not in build_attribute_keys_query(DB, TABLE, DAY, max_depth=1)
    with pytest.raises(ValueError):
        build_attribute_keys_query(DB, TABLE, DAY, max_depth=0)


def test_parse_attribute_paths_and_options() -> None:
    assert parse_attribute_paths(['["a"]', '["n","d"]', '["a"]']) == [("a",), ("n", "d")]
    with pytest.raises(ValueError):
        parse_attribute_paths(["[]"])
    with pytest.raises(ValueError):
        parse_attribute_paths(['{"a": 1}'])
    assert parse_attribute_option("action") == ("action",)
    assert parse_attribute_option('["nested", "depth"]') == ("nested", "depth")
    with pytest.raises(ValueError, match="JSON array"):
        parse_attribute_option("[not json")
    with pytest.raises(ValueError, match="strings"):
        parse_attribute_option("[1, 2]")


# --- run_query with a scripted client -------------------------------------------------


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


def test_run_query_polls_until_succeeded() -> None:
    fake = ScriptedAthena(["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"], location=RESULTS + "q.csv")
    sleeps: list[float] = []
    location = run_query(
        cast(Any, fake),
        "SELECT 1",
        workgroup="wg",
        database=DB,
        poll_interval=0.5,
        sleep=sleeps.append,
    )
    assert location == RESULTS + "q.csv"
    assert sleeps == [0.5, 0.5, 0.5]
    assert fake.started == [
        {"QueryString": "SELECT 1", "WorkGroup": "wg", "QueryExecutionContext": {"Database": DB}}
    ]


@pytest.mark.parametrize("state", ["FAILED", "CANCELLED"])
def test_run_query_raises_on_failed_or_cancelled(state: str) -> None:
    fake = ScriptedAthena(
        ["RUNNING", state], reason="SYNTAX_ERROR: line 1:8:\nColumn 'x' cannot be resolved"
    )
    with pytest.raises(AthenaQueryError) as info:
        run_query(cast(Any, fake), "SELECT x", output_location=RESULTS, sleep=lambda _: None)
    message = str(info.value)
    assert "\n" not in message
    assert state in message and "Column 'x' cannot be resolved" in message
    assert info.value.state == state
    assert info.value.query_execution_id == "qid-1"
    assert not isinstance(info.value, AthenaQueryTimeout)


def test_run_query_timeout_stops_the_query() -> None:
    fake = ScriptedAthena(["RUNNING"])
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(AthenaQueryTimeout, match="still RUNNING after 5 s"):
        run_query(
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


def test_run_query_needs_somewhere_for_results() -> None:
    fake = ScriptedAthena(["SUCCEEDED"])
    with pytest.raises(ValueError, match="workgroup or an output location"):
        run_query(cast(Any, fake), "SELECT 1")
    with pytest.raises(ValueError, match="s3://"):
        run_query(cast(Any, fake), "SELECT 1", output_location="/tmp/results")
    assert fake.started == []


def test_succeeded_without_location_is_an_error() -> None:
    fake = ScriptedAthena(["SUCCEEDED"])
    with pytest.raises(AthenaQueryError, match="no result location"):
        run_query(cast(Any, fake), "SELECT 1", workgroup="wg", sleep=lambda _: None)


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
    payload = {
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": cell} for cell in row]} for row in rows],
                "column_info": [{"Name": "key_path", "Type": "varchar"}],
            }
            for rows in results
        ]
    }
    _moto_api(endpoint, "/moto-api/static/athena/query-results", payload)


def test_moto_run_query_returns_result_csv_location(athena: Any) -> None:
    sql = build_daily_csv_query(DB, TABLE, DAY, ["action"])
    execution = execute_query(athena, sql, output_location=RESULTS, database=DB)
    assert execution.output_location == f"{RESULTS}{execution.query_execution_id}.csv"
    assert run_query(athena, sql, output_location=RESULTS).startswith(RESULTS)
    stored = athena.get_query_execution(QueryExecutionId=execution.query_execution_id)
    assert stored["QueryExecution"]["Query"] == sql


def test_moto_run_query_in_workgroup(athena: Any) -> None:
    athena.create_work_group(
        Name="owned-analytics",
        Configuration={"ResultConfiguration": {"OutputLocation": RESULTS}},
    )
    location = run_query(athena, "SELECT 1", workgroup="owned-analytics", output_location=RESULTS)
    assert location.startswith(RESULTS) and location.endswith(".csv")
    with pytest.raises(ClientError):
        run_query(athena, "SELECT 1", workgroup="missing", output_location=RESULTS)


def test_moto_timeout_stops_query(athena: Any, aws_env: str) -> None:
    _moto_api(
        aws_env,
        "/moto-api/state-manager/set-transition",
        {"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1000}},
    )
    try:
        with pytest.raises(AthenaQueryTimeout) as info:
            run_query(athena, "SELECT 1", output_location=RESULTS, timeout=0.2, poll_interval=0.02)
        qid = info.value.query_execution_id
        assert qid
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        assert state["State"] == "CANCELLED"
    finally:
        _moto_api(
            aws_env, "/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"}
        )


def test_moto_discover_attribute_keys(athena: Any, aws_env: str) -> None:
    _seed_results(aws_env, [["key_path"], ['["action"]'], ['["nested","depth"]'], ['["action"]']])
    keys = discover_attribute_keys(athena, DB, TABLE, DAY, output_location=RESULTS)
    assert keys == [("action",), ("nested", "depth")]


def test_moto_fetch_rows(athena: Any, aws_env: str) -> None:
    _seed_results(aws_env, [["key_path"], ['["a"]']])
    execution = execute_query(athena, "SELECT 1", output_location=RESULTS)
    assert list(fetch_rows(athena, execution.query_execution_id)) == [["key_path"], ['["a"]']]


# --- the click command ----------------------------------------------------------------


def test_cli_prints_sql_without_running() -> None:
    result = CliRunner().invoke(
        athena_query,
        ["--date", DAY, "--attribute", "button", "--attribute", '["nested","depth"]'],
    )
    assert result.exit_code == 0, result.output
    assert select_aliases(result.stdout)[-2:] == ["attr_button", "attr_nested_depth"]
    assert 'FROM "owned_analytics"."events"' in result.stdout


def test_cli_without_attributes_warns_on_stderr() -> None:
    result = CliRunner().invoke(athena_query, ["--date", DAY, "--database", "db", "--table", "t"])
    assert result.exit_code == 0
    assert "no --attribute given" in result.stderr
    assert result.stdout.startswith("-- Daily CSV for 2024-02-03")
    assert 'FROM "db"."t"' in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run"], "--run needs --workgroup or --output-location"),
        (["--output-location", "bucket/prefix"], "must be an s3:// URI"),
        (["--attribute", "[broken"], "not a JSON array"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(athena_query, ["--date", DAY, *args])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: {result.stderr.strip()[7:]}"]
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_cli_bad_date_is_a_usage_error() -> None:
    result = CliRunner().invoke(athena_query, ["--date", "03/02/2024"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.stderr or "%Y-%m-%d" in result.stderr


def test_cli_run_discovers_attributes_and_prints_location(aws_env: str) -> None:
    _seed_results(aws_env, [["key_path"], ['["zeta"]'], ['["action"]']])
    result = CliRunner().invoke(
        athena_query,
        [
            "--date",
            DAY,
            "--run",
            "--output-location",
            RESULTS,
            "--region",
            "us-east-1",
            "--endpoint-url",
            aws_env,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "discovered 2 attribute key(s)" in result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.fullmatch(re.escape(RESULTS) + r"[0-9a-f-]+\.csv", lines[-1])
    sql = "\n".join(lines[:-1])
    assert select_aliases(sql)[-2:] == ["attr_action", "attr_zeta"]


def test_cli_run_with_given_attributes_skips_discovery(aws_env: str) -> None:
    result = CliRunner().invoke(
        athena_query,
        [
            *("--date", DAY, "--run", "--output-location", RESULTS, "--attribute", "a"),
            *("--region", "us-east-1", "--endpoint-url", aws_env),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "discovered" not in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith(RESULTS)


def test_cli_run_aws_error_is_one_line(aws_env: str) -> None:
    result = CliRunner().invoke(
        athena_query,
        [
            *("--date", DAY, "--run", "--workgroup", "missing", "--attribute", "a"),
            *("--region", "us-east-1", "--endpoint-url", aws_env),
        ],
    )
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("Error: ")
    assert "WorkGroup does not exist" in result.stderr
