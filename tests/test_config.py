"""chalicelib.config: every stage setting read from the environment, and every refusal."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigError, Limits, Settings

LIMIT_VARIABLES = [
    "MAX_BODY_BYTES",
    "MAX_EVENTS_PER_BATCH",
    "MAX_EVENT_BYTES",
    "MAX_STRING_LENGTH",
    "MAX_ATTRIBUTE_DEPTH",
]


def test_empty_environment_gives_the_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.stage == "dev" and settings.sink == "local"
    assert settings.data_dir == "analytics_data"
    assert (settings.raw_prefix, settings.csv_prefix, settings.errors_prefix) == (
        "raw/",
        "csv/",
        "errors/",
    )
    assert (settings.rejects_stream_name, settings.rejected_prefix) == ("", "rejected/")
    assert settings.allowed_origins == ()
    assert settings.limits == Limits(
        max_body_bytes=1024 * 1024,
        max_events_per_batch=500,
        max_event_bytes=32 * 1024,
        max_string_length=4096,
        max_attribute_depth=5,
    )
    assert settings.log_event_contents is False
    assert settings.neutralize_formulas is True
    assert settings.store_user_agent is False
    assert settings.drop_bots is False


def test_every_variable_is_read() -> None:
    env = {
        "ANALYTICS_STAGE": "prod",
        "ANALYTICS_SINK": "firehose",
        "ANALYTICS_DATA_DIR": "/tmp/elsewhere",
        "FIREHOSE_STREAM_NAME": "events-stream",
        "REJECTS_STREAM_NAME": " rejects-stream ",
        "AWS_REGION": "eu-west-1",
        "ANALYTICS_BUCKET": "my-bucket",
        "RAW_PREFIX": "in/",
        "CSV_PREFIX": "out/",
        "ERRORS_PREFIX": "bad/",
        "REJECTED_PREFIX": "refused",
        "ALLOWED_ORIGINS": " https://a.example , ,https://b.example:8443 ",
        "MAX_BODY_BYTES": "2048",
        "MAX_EVENTS_PER_BATCH": "10",
        "MAX_EVENT_BYTES": "1024",
        "MAX_STRING_LENGTH": "64",
        "MAX_ATTRIBUTE_DEPTH": " 2 ",
        "LOG_EVENT_CONTENTS": "TRUE",
        "CSV_NEUTRALIZE_FORMULAS": "False",
        "STORE_USER_AGENT": "true",
        "DROP_BOTS": " True ",
    }
    assert Settings.from_env(env) == Settings(
        stage="prod",
        sink="firehose",
        data_dir="/tmp/elsewhere",
        stream_name="events-stream",
        rejects_stream_name="rejects-stream",
        region="eu-west-1",
        bucket="my-bucket",
        raw_prefix="in/",
        csv_prefix="out/",
        errors_prefix="bad/",
        rejected_prefix="refused/",
        allowed_origins=("https://a.example", "https://b.example:8443"),
        limits=Limits(
            max_body_bytes=2048,
            max_events_per_batch=10,
            max_event_bytes=1024,
            max_string_length=64,
            max_attribute_depth=2,
        ),
        log_event_contents=True,
        neutralize_formulas=False,
        store_user_agent=True,
        drop_bots=True,
    )


@pytest.mark.parametrize(
    ("env", "region"),
    [
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "us-east-1"}, "us-east-1"),
    ],
)
def test_region_prefers_the_lambda_variable(env: dict[str, str], region: str) -> None:
    assert Settings.from_env(env).region == region


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("LOG_EVENT_CONTENTS", "log_event_contents"),
        ("STORE_USER_AGENT", "store_user_agent"),
        ("DROP_BOTS", "drop_bots"),
    ],
)
@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("True", True), (" TRUE ", True), ("yes", False), ("1", False), ("", False)],
)
def test_switches_are_on_only_when_true(
    variable: str, field: str, value: str, expected: bool
) -> None:
    assert getattr(Settings.from_env({variable: value}), field) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [("false", False), ("FALSE", False), ("no", True), ("", True)]
)
def test_formulas_neutralized_unless_false(value: str, expected: bool) -> None:
    assert Settings.from_env({"CSV_NEUTRALIZE_FORMULAS": value}).neutralize_formulas is expected


def test_empty_data_dir_falls_back_to_the_default() -> None:
    assert Settings.from_env({"ANALYTICS_DATA_DIR": ""}).data_dir == "analytics_data"


@pytest.mark.parametrize("name", LIMIT_VARIABLES)
def test_blank_limit_keeps_the_default(name: str) -> None:
    assert Settings.from_env({name: "  "}).limits == Limits()


@pytest.mark.parametrize("name", LIMIT_VARIABLES)
@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "10kB"])
def test_limit_that_is_not_a_whole_number_is_refused(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name} must be a whole number, got '{raw}'$"):
        Settings.from_env({name: raw})


@pytest.mark.parametrize("name", LIMIT_VARIABLES)
@pytest.mark.parametrize("raw", ["0", "-1"])
def test_limit_that_is_not_positive_is_refused(name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name} must be positive, got {raw}$"):
        Settings.from_env({name: raw})


def test_unknown_sink_is_refused() -> None:
    with pytest.raises(ConfigError, match="ANALYTICS_SINK must be 'local' or 'firehose'"):
        Settings.from_env({"ANALYTICS_SINK": "kinesis"})


def test_firehose_sink_needs_a_stream_name() -> None:
    with pytest.raises(ConfigError, match="FIREHOSE_STREAM_NAME is required"):
        Settings.from_env({"ANALYTICS_SINK": "firehose"})
    with pytest.raises(ConfigError, match="FIREHOSE_STREAM_NAME is required"):
        Settings.from_env({"ANALYTICS_SINK": "firehose", "FIREHOSE_STREAM_NAME": ""})
    assert Settings.from_env({"ANALYTICS_SINK": "firehose", "FIREHOSE_STREAM_NAME": "s"}).sink


@pytest.mark.parametrize("origins", ["*", "https://a.example,*", " * "])
@pytest.mark.parametrize("stage", ["prod", "staging"])
def test_star_origin_is_refused_outside_dev(origins: str, stage: str) -> None:
    with pytest.raises(ConfigError, match=r"may be '\*' only in the dev stage"):
        Settings.from_env({"ANALYTICS_STAGE": stage, "ALLOWED_ORIGINS": origins})


def test_star_origin_is_allowed_in_dev() -> None:
    for env in ({"ALLOWED_ORIGINS": "*"}, {"ANALYTICS_STAGE": "dev", "ALLOWED_ORIGINS": "*"}):
        assert Settings.from_env(env).allowed_origins == ("*",)


def test_listed_origins_are_allowed_in_prod() -> None:
    env = {"ANALYTICS_STAGE": "prod", "ALLOWED_ORIGINS": "https://app.example.com"}
    assert Settings.from_env(env).allowed_origins == ("https://app.example.com",)


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        ("raw/", "raw/"),
        ("raw", "raw/"),
        ("/raw", "raw/"),
        ("//team/raw", "team/raw/"),
        ("  team/raw/  ", "team/raw/"),
    ],
)
@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("RAW_PREFIX", "raw_prefix"),
        ("CSV_PREFIX", "csv_prefix"),
        ("ERRORS_PREFIX", "errors_prefix"),
        ("REJECTED_PREFIX", "rejected_prefix"),
    ],
)
def test_prefixes_are_normalised(variable: str, field: str, value: str, prefix: str) -> None:
    assert getattr(Settings.from_env({variable: value}), field) == prefix


def test_the_daily_build_settings() -> None:
    from chalicelib.config import DailyBuild

    assert Settings.from_env({}).daily == DailyBuild()
    assert DailyBuild().athena_threshold_bytes is None and not DailyBuild().uses_athena
    for unset in ("", " ", "-1"):
        daily = Settings.from_env({"ATHENA_DAILY_THRESHOLD_BYTES": unset}).daily
        assert daily.athena_threshold_bytes is None  # never Athena
    env = {
        "ATHENA_DAILY_THRESHOLD_BYTES": "0",
        "PARQUET_DAILY": "true",
        "DAILY_CATCHUP_DAYS": "5",
        "ATHENA_WORKGROUP": "wg",
        "ATHENA_DATABASE": "db",
        "ATHENA_TABLE": "lines",
        "ATHENA_RESULTS_PREFIX": "results",
        "PARQUET_PREFIX": "/columnar",
    }
    assert Settings.from_env(env).daily == DailyBuild(
        athena_threshold_bytes=0,  # always Athena
        parquet=True,
        catchup_days=5,
        workgroup="wg",
        database="db",
        table="lines",
        results_prefix="results/",
        parquet_prefix="columnar/",
    )
    for bad, message in (("-2", "0 \\(always Athena\\)"), ("1e9", "whole number")):
        with pytest.raises(ConfigError, match=message):
            Settings.from_env({"ATHENA_DAILY_THRESHOLD_BYTES": bad})
    for bad in ("8", "-1", "x"):
        with pytest.raises(ConfigError, match="DAILY_CATCHUP_DAYS must be 0 to 7"):
            Settings.from_env({"DAILY_CATCHUP_DAYS": bad})


def test_prod_config_builds_big_days_on_athena_and_every_day_as_parquet() -> None:
    import json

    from tests.conftest import REPO_ROOT

    config = json.loads((REPO_ROOT / ".chalice" / "config.json").read_text())
    daily = Settings.from_env(config["stages"]["prod"]["environment_variables"]).daily
    assert daily.athena_threshold_bytes == 256 * 1024 * 1024 and daily.parquet
