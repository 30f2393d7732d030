"""The prod stage's target: its streams, bucket, Athena workgroup and Glue tables, and
where they live; parsed and checked before any file is rewritten (``configure``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib.config import DailyBuild

_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_GLUE_NAME = re.compile(r"^[a-z0-9_]{1,255}$")
_WORKGROUP = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")
STREAM_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):firehose:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"deliverystream/(?P<name>[a-zA-Z0-9_.-]{1,64})$"
)


@dataclass(frozen=True)
class ProdTarget:
    """The streams and bucket the prod stage uses, and where they live."""

    stream_name: str
    bucket: str
    region: str
    account_id: str
    origins: tuple[str, ...]
    # The rejects stream; empty: the stage keeps no rejects.
    rejects_stream_name: str = ""
    # The daily build's Athena workgroup and Glue tables (the template's defaults).
    workgroup: str = DailyBuild.workgroup
    database: str = DailyBuild.database
    table: str = DailyBuild.table
    parquet_table: str = "events_daily"

    @property
    def partition(self) -> str:
        return partition_for(self.region)

    @property
    def stream_arn(self) -> str:
        return self.stream_arns[0]

    @property
    def stream_arns(self) -> tuple[str, ...]:
        """Every stream the API may put records into: events, then rejects."""
        prefix = f"arn:{self.partition}:firehose:{self.region}:{self.account_id}:deliverystream/"
        return tuple(prefix + name for name in (self.stream_name, self.rejects_stream_name) if name)

    @property
    def bucket_arn(self) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket}"

    @property
    def workgroup_arn(self) -> str:
        prefix = f"arn:{self.partition}:athena:{self.region}:{self.account_id}:"
        return prefix + f"workgroup/{self.workgroup}"

    @property
    def glue_arns(self) -> tuple[str, ...]:
        """The catalog, the database and the two tables the daily build reads."""
        prefix = f"arn:{self.partition}:glue:{self.region}:{self.account_id}:"
        return (
            prefix + "catalog",
            prefix + f"database/{self.database}",
            prefix + f"table/{self.database}/{self.table}",
            prefix + f"table/{self.database}/{self.parquet_table}",
        )


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def parse_origins(value: str) -> tuple[str, ...]:
    """``https://a,https://b`` → origins exactly as a browser sends them in ``Origin``."""
    origins: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if "*" in item:
            raise ValueError(
                f"{item!r}: the prod stage needs explicit origins (no '*'); "
                "list every site that embeds the client"
            )
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{item!r} is not an origin like https://app.example.com")
        if parts.path or parts.query or parts.fragment or parts.username:
            raise ValueError(
                f"{item!r}: an origin is scheme://host[:port] only, with no path or "
                "trailing slash (browsers send it that way and it is compared exactly)"
            )
        if item != item.lower():
            raise ValueError(f"{item!r}: write the origin in lower case, as browsers send it")
        if item not in origins:
            origins.append(item)
    if not origins:
        raise ValueError("no origins given: pass --origins https://app.example.com[,...]")
    return tuple(origins)


def validate_target(target: ProdTarget) -> None:
    for name in (target.stream_name, *filter(None, [target.rejects_stream_name])):
        if not _STREAM_NAME.match(name):
            raise ValueError(f"stream name {name!r} is not a Firehose stream name")
    if target.rejects_stream_name == target.stream_name:
        raise ValueError("the rejects stream must not be the events stream")
    if not _BUCKET_NAME.match(target.bucket) or ".." in target.bucket:
        raise ValueError(f"bucket {target.bucket!r} is not an S3 bucket name")
    if not _REGION.match(target.region):
        raise ValueError(f"region {target.region!r} is not an AWS region like us-east-1")
    if not _ACCOUNT_ID.match(target.account_id):
        raise ValueError(f"account id {target.account_id!r} is not 12 digits")
    if not target.origins:
        raise ValueError("at least one allowed origin is needed")
    for name in (target.database, target.table, target.parquet_table):
        if not _GLUE_NAME.match(name):
            raise ValueError(f"{name!r} is not a Glue database or table name")
    if not _WORKGROUP.match(target.workgroup):
        raise ValueError(f"{target.workgroup!r} is not an Athena workgroup name")
