"""The prod stage's target: its streams, bucket, Athena workgroup and Glue tables, and
where they live; resolved from the command line's values or a stack's outputs
(:func:`resolve_target`), parsed and checked before any file is rewritten (``configure``)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
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


@dataclass(frozen=True)
class GivenTarget:
    """What the command line names of the target (``configure-prod``'s options); any of it
    may be left out when a stack names it."""

    stream_name: str | None = None
    rejects_stream_name: str | None = None
    bucket: str | None = None
    region: str | None = None
    account_id: str | None = None


@dataclass(frozen=True)
class StackOutputs:
    """A CloudFormation stack's name and its outputs (infrastructure/pipeline.yaml's)."""

    stack: str
    outputs: Mapping[str, str]


class MissingTargetValues(ValueError):
    """Without a stack, the command line must name the whole target; some of it is missing."""


def resolve_target(
    given: GivenTarget, origins: tuple[str, ...], stack: StackOutputs | None = None
) -> ProdTarget:
    """The prod stage's target: from the stack's outputs when there is a stack, else
    from the values given, which must then name the stream, bucket, region and account.

    With a stack, a value also given must agree with the stack's, and a rejects stream
    given is taken when the stack has none (one made outside the stack). Raises
    :class:`MissingTargetValues` for a value missing, ``ValueError`` for the rest; the
    target is not validated here (:func:`validate_target`).
    """
    if stack is None:
        needed = {
            "--stream-name": given.stream_name,
            "--bucket": given.bucket,
            "--region": given.region,
            "--account-id": given.account_id,
        }
        missing = [option for option, value in needed.items() if not value]
        if missing:
            raise MissingTargetValues(f"missing {', '.join(missing)} (or pass --from-stack STACK)")
        assert given.stream_name and given.bucket and given.region and given.account_id
        return ProdTarget(
            given.stream_name,
            given.bucket,
            given.region,
            given.account_id,
            origins,
            given.rejects_stream_name or "",
        )
    try:
        target = target_from_stack_outputs(stack.outputs, given.region, origins)
    except ValueError as exc:
        raise ValueError(f"stack {stack.stack}: {exc}") from None
    for option, value, found in (
        ("--stream-name", given.stream_name, target.stream_name),
        ("--rejects-stream-name", given.rejects_stream_name, target.rejects_stream_name),
        ("--bucket", given.bucket, target.bucket),
        ("--account-id", given.account_id, target.account_id),
    ):
        if value and found and value != found:
            raise ValueError(f"{option} {value} but stack {stack.stack} says {found}")
    if given.rejects_stream_name and not target.rejects_stream_name:
        target = dataclasses.replace(target, rejects_stream_name=given.rejects_stream_name)
    return target


def target_from_stack_outputs(
    outputs: Mapping[str, str], region: str | None, origins: tuple[str, ...]
) -> ProdTarget:
    """StreamName/StreamArn/BucketName (and RejectsStreamArn) outputs of
    infrastructure/pipeline.yaml → a target; a stack without the rejects stream gives a
    target without one."""
    missing = [key for key in ("StreamArn", "BucketName") if not outputs.get(key)]
    if missing:
        raise ValueError(
            f"the stack has no output {', '.join(missing)}: is it infrastructure/pipeline.yaml?"
        )
    match = STREAM_ARN.match(outputs["StreamArn"])
    if not match:
        raise ValueError(f"StreamArn output {outputs['StreamArn']!r} is not a Firehose stream ARN")
    stream_name = outputs.get("StreamName") or match.group("name")
    if stream_name != match.group("name"):
        raise ValueError(f"StreamName {stream_name!r} and StreamArn disagree")
    if region and region != match.group("region"):
        raise ValueError(f"--region {region} but the stream is in {match.group('region')}")
    rejects = ""
    if outputs.get("RejectsStreamArn"):
        found = STREAM_ARN.match(outputs["RejectsStreamArn"])
        if not found or found.group("account", "region") != match.group("account", "region"):
            raise ValueError(
                f"RejectsStreamArn {outputs['RejectsStreamArn']!r} is not a Firehose stream "
                "beside the events stream"
            )
        rejects = found.group("name")
    return ProdTarget(
        stream_name=stream_name,
        bucket=outputs["BucketName"],
        region=match.group("region"),
        account_id=match.group("account"),
        origins=origins,
        rejects_stream_name=rejects,
        workgroup=outputs.get("AthenaWorkGroup") or ProdTarget.workgroup,
        database=outputs.get("GlueDatabase") or ProdTarget.database,
        table=outputs.get("GlueTable") or ProdTarget.table,
        parquet_table=outputs.get("ParquetTable") or ProdTarget.parquet_table,
    )
