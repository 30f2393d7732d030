"""python -m exporter athena-query (exporter/athena/command.py, chalicelib/athena/on_demand.py):
the SQL it prints, its columns and errors, and with --run against a moto server."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.athena.delivery import DELIVERY_COLUMNS
from chalicelib.athena.on_demand import attribute_column, named_columns, parse_attribute_option
from exporter.athena.command import athena_query
from tests.test_athena_runner import (
    BAD_LINES_HEADER,
    BAD_OBJECT,
    COLUMNS_HEADER,
    DAY,
    RESULTS,
    aws_env,
    moto_endpoint,
    seed_results,
)
from tests.test_athena_sql import output_names

__all__ = ["aws_env", "moto_endpoint"]  # fixtures the tests below use


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
    seed_results(
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
    seed_results(aws_env, [BAD_LINES_HEADER, [BAD_OBJECT, "2", "120"]])
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
    seed_results(aws_env, [list(DELIVERY_COLUMNS), ["3", "9", "1", "1", "0", "2", "0", "1", "0"]])
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
