"""What every step of the Athena daily build shares: the clients, the state objects
kept under ``<results prefix>daily-build/YYYY-MM-DD/``, the tag each query carries
in its last line, and reading a query's state and result object."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_s3 import S3Client

TAG_PREFIX = "-- owned-analytics daily build "
STEPS = ("columns", "csv", "bad-lines", "parquet")
RUNNING_STATES = frozenset({"QUEUED", "RUNNING"})
ENDED_BADLY = frozenset({"FAILED", "CANCELLED"})
# S3's largest single copy; past it the copy goes in parts (at most 10,000 of them).
MAX_COPY_BYTES = 5 * 1024**3
MIN_COPY_PART_BYTES = 512 * 1024**2


class StepNotReady(RuntimeError):
    """A result object landed before Athena reported its query done: the Lambda's retry
    of the S3 event (or the next schedule run) takes it up again."""


@dataclass(frozen=True)
class AthenaDaily:
    """What every step works with: the clients, the bucket and the stage's settings."""

    athena: AthenaClient
    s3: S3Client
    settings: Settings
    log: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))

    @property
    def bucket(self) -> str:
        return self.settings.bucket

    # --- state objects ------------------------------------------------------------

    def state_key(self, day: date, name: str) -> str:
        return f"{self.settings.daily.results_prefix}daily-build/{day.isoformat()}/{name}"

    def read_state(self, day: date, name: str) -> dict[str, Any] | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.state_key(day, name))["Body"]
        except self.s3.exceptions.NoSuchKey:
            return None
        loaded: dict[str, Any] = json.loads(body.read())
        return loaded

    def write_state(self, day: date, name: str, state: dict[str, Any]) -> None:
        body = json.dumps(state, sort_keys=True).encode()
        self.s3.put_object(Bucket=self.bucket, Key=self.state_key(day, name), Body=body)

    def exists(self, key: str) -> bool:
        return key_exists(self.s3, self.bucket, key)

    def any_under(self, prefix: str) -> bool:
        found = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
        return bool(found.get("Contents"))

    # --- queries --------------------------------------------------------------------

    def start(self, sql: str, step: str, day: date, build: str, parent: str) -> str:
        """Start a tagged query; the same (step, day, parent) starts it only once."""
        token = hashlib.sha256(f"{step}|{day.isoformat()}|{parent}".encode()).hexdigest()
        started = self.athena.start_query_execution(
            QueryString=sql + "\n" + query_tag(step, day, build),
            QueryExecutionContext={"Database": self.settings.daily.database},
            WorkGroup=self.settings.daily.workgroup,
            ClientRequestToken=token,
        )
        return started["QueryExecutionId"]

    def execution(self, query_id: str) -> dict[str, Any]:
        found = self.athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        return dict(found)

    def result_rows(self, execution: dict[str, Any]) -> list[list[str]]:
        """A finished query's rows from its result object (header row left out)."""
        bucket, key = split_s3_uri(result_location(execution))
        body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        return list(csv.reader(io.StringIO(body, newline="")))[1:]

    def log_json(self, level: int, record: dict[str, Any]) -> None:
        self.log.log(level, json.dumps(record, separators=(",", ":"), default=str))


def key_exists(s3: S3Client, bucket: str, key: str) -> bool:
    """One LIST of the key itself (the policies list these prefixes; they read no csv/)."""
    found = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
    return any(item["Key"] == key for item in found.get("Contents", []))


def query_tag(step: str, day: date, build: str) -> str:
    """The last line of every query the build starts: a comment naming its step."""
    payload = json.dumps({"step": step, "day": day.isoformat(), "build": build}, sort_keys=True)
    return TAG_PREFIX + payload


def parse_tag(sql: str) -> dict[str, str] | None:
    """The tag of a query the build started; None for anyone else's query."""
    last = sql.rstrip().rsplit("\n", 1)[-1]
    if not last.startswith(TAG_PREFIX):
        return None
    try:
        tag = json.loads(last[len(TAG_PREFIX) :])
        date.fromisoformat(tag["day"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(tag, dict) or tag.get("step") not in STEPS:
        return None
    return {key: str(value) for key, value in tag.items()}


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def result_location(execution: dict[str, Any]) -> str:
    location = execution.get("ResultConfiguration", {}).get("OutputLocation")
    if not location:
        raise ValueError(f"query {execution.get('QueryExecutionId')} has no result location")
    return str(location)


def state_of(execution: dict[str, Any]) -> tuple[str, str]:
    """The query's state and, when it ended badly, Athena's reason on one line."""
    status = execution.get("Status", {})
    state = str(status.get("State", ""))
    reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get(
        "ErrorMessage", ""
    )
    return state, " ".join(str(reason).split())


def query_id_of(key: str, results_prefix: str) -> str | None:
    """``athena-results/<id>.csv`` (or ``<id>-manifest.csv``, an UNLOAD's) → the query id;
    None for anything else under the prefix."""
    name = key.removeprefix(results_prefix)
    if name == key or "/" in name or not name.endswith(".csv"):
        return None
    return name.removesuffix(".csv").removesuffix("-manifest") or None


def log_failed(job: AthenaDaily, day: date, step: str, execution: dict[str, Any]) -> None:
    state, reason = state_of(execution)
    job.log_json(
        logging.ERROR,
        {
            "event": "daily",
            "engine": "athena",
            "day": day.isoformat(),
            "step": step,
            "query": execution.get("QueryExecutionId"),
            "state": state,
            "reason": reason or "no reason given",
            "retry": "the next schedule run",
        },
    )


def scanned_bytes(execution: dict[str, Any]) -> int:
    return int(execution.get("Statistics", {}).get("DataScannedInBytes") or 0)
