"""Per-stage settings, read from environment variables.

Chalice sets stage-level ``environment_variables`` before ``app.py`` is
imported, so every value here is known at import time (variables set only
under ``lambda_functions.<fn>`` are not, which is why none are used).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

# The nine fixed columns, eventId and the overflow column.
MIN_CSV_COLUMNS = 11


class ConfigError(ValueError):
    """A stage setting is missing or malformed; the message names it."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _true(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "false").strip().lower() == "true"


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Limits:
    """What one request may carry. Defaults are the spec's."""

    max_body_bytes: int = 1024 * 1024
    max_events_per_batch: int = 500
    max_event_bytes: int = 32 * 1024
    max_string_length: int = 4096
    max_attribute_depth: int = 5
    # Leaf keys of metricAttributes after flattening, whatever form they came in.
    max_attribute_keys: int = 100


@dataclass(frozen=True)
class DailyBuild:
    """How the daily schedule builds ``csv/YYYY-MM-DD_combined.csv`` and the Parquet copy
    (docs/ATHENA.md, "Which engine builds the day")."""

    # gzip bytes of a day's raw objects past which Athena builds the day; 0: always
    # Athena; None (ATHENA_DAILY_THRESHOLD_BYTES unset or -1): never.
    athena_threshold_bytes: int | None = None
    # Write parquet/dt=YYYY-MM-DD/ with Athena for every day (PARQUET_DAILY).
    parquet: bool = False
    # Days before yesterday the schedule also builds when their combined file is missing.
    catchup_days: int = 3
    workgroup: str = "owned-analytics"
    database: str = "owned_analytics"
    table: str = "events"
    # The workgroup's result location (its S3 events drive the Athena build) and the
    # Parquet copy's prefix, both in the stage's bucket.
    results_prefix: str = "athena-results/"
    parquet_prefix: str = "parquet/"

    @property
    def uses_athena(self) -> bool:
        return self.athena_threshold_bytes is not None or self.parquet


def _threshold(env: Mapping[str, str]) -> int | None:
    raw = env.get("ATHENA_DAILY_THRESHOLD_BYTES", "").strip()
    if not raw or raw == "-1":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(
            f"ATHENA_DAILY_THRESHOLD_BYTES must be a whole number of bytes, got {raw!r}"
        ) from None
    if value < 0:
        raise ConfigError(
            f"ATHENA_DAILY_THRESHOLD_BYTES must be 0 (always Athena), positive, or -1 "
            f"(never), got {value}"
        )
    return value


def _daily_build(env: Mapping[str, str]) -> DailyBuild:
    catchup = env.get("DAILY_CATCHUP_DAYS", "").strip()
    if catchup and not (catchup.isdigit() and int(catchup) <= 7):
        # athena-results/ (where the build keeps its state) expires after 7 days.
        raise ConfigError(f"DAILY_CATCHUP_DAYS must be 0 to 7, got {catchup!r}")
    return DailyBuild(
        athena_threshold_bytes=_threshold(env),
        parquet=_true(env, "PARQUET_DAILY"),
        catchup_days=int(catchup) if catchup else DailyBuild.catchup_days,
        workgroup=env.get("ATHENA_WORKGROUP", "").strip() or DailyBuild.workgroup,
        database=env.get("ATHENA_DATABASE", "").strip() or DailyBuild.database,
        table=env.get("ATHENA_TABLE", "").strip() or DailyBuild.table,
        results_prefix=_prefix(env.get("ATHENA_RESULTS_PREFIX", DailyBuild.results_prefix)),
        parquet_prefix=_prefix(env.get("PARQUET_PREFIX", DailyBuild.parquet_prefix)),
    )


@dataclass(frozen=True)
class Settings:
    """One stage's settings, read once from the environment ``.chalice/config.json`` gives
    the stage (``from_env``; every refusal is a ``ConfigError`` naming the variable): where
    events go (the sink, the data folder or the streams), the prefixes of the layout, the
    route's limits and origins, and how CSVs and the daily build are made. ``under(prefix)``
    moves the whole layout below a prefix, as the command line's ``s3://bucket/prefix``."""

    stage: str = "dev"
    # "local" writes under data_dir; "firehose" calls PutRecordBatch on stream_name.
    sink: str = "local"
    data_dir: str = "analytics_data"
    stream_name: str = ""
    # Firehose stream for rejected input (prod); empty: rejects are not kept there.
    rejects_stream_name: str = ""
    region: str = ""
    bucket: str = ""
    raw_prefix: str = "raw/"
    csv_prefix: str = "csv/"
    errors_prefix: str = "errors/"
    # Where the local sink keeps rejects (in prod the rejects stream's own prefix decides).
    rejected_prefix: str = "rejected/"
    allowed_origins: tuple[str, ...] = ()
    # Refuse (403) a POST whose Origin header names an origin outside the allow-list;
    # "false" for setups that proxy the endpoint through another origin.
    enforce_allowed_origins: bool = True
    limits: Limits = field(default_factory=Limits)
    log_event_contents: bool = False
    neutralize_formulas: bool = True
    # Start the daily combined CSV with a UTF-8 byte-order mark (CSV_BOM): LibreOffice's
    # default import and Excel on Windows then read it as UTF-8, not a legacy charset.
    csv_bom: bool = False
    # Distinct columns per CSV file, the overflow column included.
    max_csv_columns: int = 1000
    # Keep the raw User-Agent header (cut) as userAgent; drop bots' events instead of storing.
    store_user_agent: bool = False
    drop_bots: bool = False
    daily: DailyBuild = field(default_factory=DailyBuild)

    def under(self, prefix: str) -> Settings:
        """These settings for data kept under ``prefix`` (an ``s3://bucket/prefix/``
        source's, or ""): every layout prefix moved below it."""
        return replace(
            self,
            raw_prefix=prefix + self.raw_prefix,
            csv_prefix=prefix + self.csv_prefix,
            errors_prefix=prefix + self.errors_prefix,
            rejected_prefix=prefix + self.rejected_prefix,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = env.get("ANALYTICS_STAGE", "dev")
        sink = env.get("ANALYTICS_SINK", "local")
        if sink not in ("local", "firehose"):
            raise ConfigError(f"ANALYTICS_SINK must be 'local' or 'firehose', got {sink!r}")
        origins = _list(env, "ALLOWED_ORIGINS")
        if "*" in origins and stage != "dev":
            raise ConfigError("ALLOWED_ORIGINS may be '*' only in the dev stage; list origins")
        if sink == "firehose" and not env.get("FIREHOSE_STREAM_NAME"):
            raise ConfigError("FIREHOSE_STREAM_NAME is required when ANALYTICS_SINK=firehose")
        limits = Limits(
            max_body_bytes=_int(env, "MAX_BODY_BYTES", Limits.max_body_bytes),
            max_events_per_batch=_int(env, "MAX_EVENTS_PER_BATCH", Limits.max_events_per_batch),
            max_event_bytes=_int(env, "MAX_EVENT_BYTES", Limits.max_event_bytes),
            max_string_length=_int(env, "MAX_STRING_LENGTH", Limits.max_string_length),
            max_attribute_depth=_int(env, "MAX_ATTRIBUTE_DEPTH", Limits.max_attribute_depth),
            max_attribute_keys=_int(env, "MAX_ATTRIBUTE_KEYS", Limits.max_attribute_keys),
        )
        max_csv_columns = _int(env, "MAX_CSV_COLUMNS", cls.max_csv_columns)
        if max_csv_columns < MIN_CSV_COLUMNS:
            raise ConfigError(
                f"MAX_CSV_COLUMNS must be at least {MIN_CSV_COLUMNS} (the fixed columns, "
                f"eventId and the overflow column), got {max_csv_columns}"
            )
        return cls(
            stage=stage,
            sink=sink,
            # The shell's ANALYTICS_DATA_DIR wins so one checkout can run several demos.
            data_dir=env.get("ANALYTICS_DATA_DIR") or "analytics_data",
            stream_name=env.get("FIREHOSE_STREAM_NAME", ""),
            rejects_stream_name=env.get("REJECTS_STREAM_NAME", "").strip(),
            region=env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", ""),
            bucket=env.get("ANALYTICS_BUCKET", ""),
            raw_prefix=_prefix(env.get("RAW_PREFIX", "raw/")),
            csv_prefix=_prefix(env.get("CSV_PREFIX", "csv/")),
            errors_prefix=_prefix(env.get("ERRORS_PREFIX", "errors/")),
            rejected_prefix=_prefix(env.get("REJECTED_PREFIX", "rejected/")),
            allowed_origins=origins,
            enforce_allowed_origins=env.get("ENFORCE_ALLOWED_ORIGINS", "true").strip().lower()
            != "false",
            limits=limits,
            log_event_contents=_true(env, "LOG_EVENT_CONTENTS"),
            neutralize_formulas=env.get("CSV_NEUTRALIZE_FORMULAS", "true").lower() != "false",
            csv_bom=_true(env, "CSV_BOM"),
            max_csv_columns=max_csv_columns,
            store_user_agent=_true(env, "STORE_USER_AGENT"),
            drop_bots=_true(env, "DROP_BOTS"),
            daily=_daily_build(env),
        )


def _prefix(value: str) -> str:
    value = value.strip().lstrip("/")
    return value if value.endswith("/") else value + "/"


def refused_origins(settings: Settings) -> tuple[str, ...]:
    """The allow-list a POST's Origin is checked against, or () when the stage does not
    check (no list, ``*``, or ``ENFORCE_ALLOWED_ORIGINS=false``)."""
    origins = settings.allowed_origins
    return origins if settings.enforce_allowed_origins and "*" not in origins else ()
