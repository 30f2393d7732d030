"""Point the prod stage at its streams and bucket (the `configure-prod` command).

It rewrites ``.chalice/config.json`` (the prod environment) and both prod policy
files so that they name exactly the events Firehose stream (and the rejects stream,
when there is one) and one bucket's prefixes, from explicit values or from the
outputs of the ``infrastructure/pipeline.yaml`` stack.
The JSON rewriting is pure functions (dict in, dict out) so it is tested offline.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
from botocore.exceptions import ClientError

from chalicelib.aws import make_client
from clitools import aws_errors, echo, project_dir_option

PROD_STAGE = "prod"
API_POLICY_FILE = "policy-prod.json"
CONVERT_POLICY_FILE = "policy-prod-convert.json"

_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_STREAM_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):firehose:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"deliverystream/(?P<name>[a-zA-Z0-9_.-]{1,64})$"
)


# --------------------------------------------------------------------------------------
# Pure: the documents in, the rewritten documents out
# --------------------------------------------------------------------------------------


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


def stage_prefixes(config: Mapping[str, Any], stage: str = PROD_STAGE) -> dict[str, str]:
    """The raw/csv/errors prefixes the stage's environment sets (defaults as Settings)."""
    env = config.get("stages", {}).get(stage, {}).get("environment_variables", {})
    defaults = {"RAW_PREFIX": "raw/", "CSV_PREFIX": "csv/", "ERRORS_PREFIX": "errors/"}
    prefixes: dict[str, str] = {}
    for name, default in defaults.items():
        value = str(env.get(name, default)).strip().lstrip("/") or default
        prefixes[name] = value if value.endswith("/") else value + "/"
    return prefixes


def rewrite_config(config: Mapping[str, Any], target: ProdTarget) -> dict[str, Any]:
    """A copy of ``.chalice/config.json`` whose prod stage uses ``target``.

    The region is not an environment variable: Lambda sets ``AWS_REGION`` itself (the
    key is reserved) and ``chalice deploy`` deploys to the region of the caller's AWS
    configuration; the region goes into the policy ARNs instead.
    """
    result = copy.deepcopy(dict(config))
    stages = result.get("stages")
    if not isinstance(stages, dict) or not isinstance(stages.get(PROD_STAGE), dict):
        raise ValueError("config.json has no stages.prod section")
    env = stages[PROD_STAGE].setdefault("environment_variables", {})
    if not isinstance(env, dict):
        raise ValueError("stages.prod.environment_variables is not an object")
    env["FIREHOSE_STREAM_NAME"] = target.stream_name
    env["REJECTS_STREAM_NAME"] = target.rejects_stream_name
    env["ANALYTICS_BUCKET"] = target.bucket
    env["ALLOWED_ORIGINS"] = ",".join(target.origins)
    return result


def _is_stream(arn: str) -> bool:
    return ":firehose:" in arn and ":deliverystream/" in arn


def _retarget_resources(resources: list[str], target: ProdTarget) -> list[str]:
    """A statement's resources pointed at the target; the streams it names become the
    target's streams (events, rejects), each once."""
    retargeted: list[str] = []
    for arn in resources:
        for new in target.stream_arns if _is_stream(arn) else (_retarget_arn(arn, target),):
            if new not in retargeted:
                retargeted.append(new)
    return retargeted


def _retarget_arn(arn: str, target: ProdTarget) -> str:
    """Point one ARN of a policy at the target's bucket, keeping its shape."""
    s3 = re.match(r"^arn:aws[a-z-]*:s3:::(?P<bucket>[^/]+)(?P<path>/.*)?$", arn)
    if s3:
        return target.bucket_arn + (s3.group("path") or "")
    logs = re.match(r"^arn:aws[a-z-]*:logs:[^:]*:[^:]*:(?P<rest>.*)$", arn)
    if logs:
        return (
            f"arn:{target.partition}:logs:{target.region}:{target.account_id}:{logs.group('rest')}"
        )
    return arn


def rewrite_policy(policy: Mapping[str, Any], target: ProdTarget) -> dict[str, Any]:
    """A copy of an IAM policy whose Firehose/S3 ARNs name the target's streams and bucket.

    Statements, actions, prefixes and conditions are kept as they are: the files are the
    reviewed least-privilege policies, only the names in them change (a statement that
    names a stream names the events stream and the rejects stream, when there is one).
    """
    result = copy.deepcopy(dict(policy))
    statements = result.get("Statement")
    if not isinstance(statements, list):
        raise ValueError("policy has no Statement list")
    for statement in statements:
        resource = statement.get("Resource")
        if isinstance(resource, str):
            several = _retarget_resources([resource], target)
            statement["Resource"] = several[0] if len(several) == 1 else several
        elif isinstance(resource, list):
            statement["Resource"] = _retarget_resources([str(item) for item in resource], target)
    return result


def log_groups_arn_prefix(target: ProdTarget, app_name: str) -> str:
    """The ARN prefix of the prod stage's Lambda log groups (Chalice names the API's
    function <app>-prod and the others <app>-prod-<name>)."""
    return (
        f"arn:{target.partition}:logs:{target.region}:{target.account_id}:"
        f"log-group:/aws/lambda/{app_name}-{PROD_STAGE}"
    )


def check_policy_scope(
    policy: Mapping[str, Any],
    target: ProdTarget,
    prefixes: Mapping[str, str],
    log_groups: str | None = None,
) -> None:
    """Refuse to write a policy that names anything but the streams, the bucket's prefixes
    and (when ``log_groups`` is given) the stage's own log groups."""
    allowed_objects = {f"{target.bucket_arn}/{prefix}*" for prefix in prefixes.values()}
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            if ":logs:" in resource and log_groups and not resource.startswith(log_groups):
                raise ValueError(f"policy names logs outside {log_groups}*: {resource}")
            if ":firehose:" in resource and resource not in target.stream_arns:
                raise ValueError(f"policy names another stream: {resource}")
            if (
                ":s3:::" in resource
                and resource != target.bucket_arn
                and resource not in allowed_objects
            ):
                raise ValueError(
                    f"policy names {resource}, outside {', '.join(sorted(allowed_objects))}"
                )


@dataclass(frozen=True)
class ProjectFiles:
    config: dict[str, Any]
    api_policy: dict[str, Any]
    convert_policy: dict[str, Any]


def configure_project(files: ProjectFiles, target: ProdTarget) -> ProjectFiles:
    """All three rewritten documents, checked; nothing is written here."""
    validate_target(target)
    config = rewrite_config(files.config, target)
    prefixes = stage_prefixes(config)
    api_policy = rewrite_policy(files.api_policy, target)
    convert_policy = rewrite_policy(files.convert_policy, target)
    log_groups = log_groups_arn_prefix(target, str(config.get("app_name", "owned-analytics")))
    for policy in (api_policy, convert_policy):
        check_policy_scope(policy, target, prefixes, log_groups)
    return ProjectFiles(config, api_policy, convert_policy)


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
    match = _STREAM_ARN.match(outputs["StreamArn"])
    if not match:
        raise ValueError(f"StreamArn output {outputs['StreamArn']!r} is not a Firehose stream ARN")
    stream_name = outputs.get("StreamName") or match.group("name")
    if stream_name != match.group("name"):
        raise ValueError(f"StreamName {stream_name!r} and StreamArn disagree")
    if region and region != match.group("region"):
        raise ValueError(f"--region {region} but the stream is in {match.group('region')}")
    rejects = ""
    if outputs.get("RejectsStreamArn"):
        found = _STREAM_ARN.match(outputs["RejectsStreamArn"])
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
    )


# --------------------------------------------------------------------------------------
# Reading the stack and the files, and the command
# --------------------------------------------------------------------------------------


def read_stack_outputs(
    stack: str, region: str | None, endpoint_url: str | None = None
) -> dict[str, str]:
    with aws_errors("CloudFormation"):
        client = make_client("cloudformation", region=region, endpoint_url=endpoint_url)
        try:
            stacks = client.describe_stacks(StackName=stack)["Stacks"]
        except ClientError as exc:
            if "does not exist" in str(exc.response.get("Error", {}).get("Message", "")):
                raise click.ClickException(
                    f"no CloudFormation stack {stack!r} in this region: deploy "
                    "infrastructure/pipeline.yaml first or pass --region"
                ) from None
            raise
    if not stacks:
        raise click.ClickException(f"no CloudFormation stack {stack!r}")
    return {
        str(item["OutputKey"]): str(item["OutputValue"]) for item in stacks[0].get("Outputs", [])
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.ClickException(
            f"{path} not found: run from the project root or pass --project-dir"
        ) from None
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} does not hold a JSON object")
    return data


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    # Written beside the target and renamed over it: never a half-written config.
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, path)


@click.command("configure-prod")
@click.option("--stream-name", help="Firehose stream name (output StreamName).")
@click.option(
    "--rejects-stream-name",
    help="Firehose stream for rejected events (output RejectsStreamName); without one the "
    "stage keeps no rejects.",
)
@click.option("--bucket", help="Analytics bucket name (output BucketName).")
@click.option("--region", help="Region of the stream and bucket, e.g. us-east-1.")
@click.option("--account-id", help="12-digit AWS account id that owns the stream.")
@click.option(
    "--origins",
    required=True,
    help="Comma-separated sites allowed to post, e.g. https://app.example.com,https://b.example.com.",
)
@click.option(
    "--from-stack",
    "stack",
    help="Read stream, bucket, region and account from this CloudFormation stack's outputs.",
)
@project_dir_option("Project root holding .chalice/.")
@click.option("--endpoint-url", hidden=True, help="CloudFormation endpoint (tests).")
def configure_prod(
    stream_name: str | None,
    rejects_stream_name: str | None,
    bucket: str | None,
    region: str | None,
    account_id: str | None,
    origins: str,
    stack: str | None,
    project_dir: Path,
    endpoint_url: str | None,
) -> None:
    """Point the prod stage at its streams and bucket: config.json and both policies."""
    try:
        allowed = parse_origins(origins)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--origins") from None
    if stack:
        outputs = read_stack_outputs(stack, region, endpoint_url)
        try:
            target = target_from_stack_outputs(outputs, region, allowed)
        except ValueError as exc:
            raise click.ClickException(f"stack {stack}: {exc}") from None
        for option, given, found in (
            ("--stream-name", stream_name, target.stream_name),
            ("--rejects-stream-name", rejects_stream_name, target.rejects_stream_name),
            ("--bucket", bucket, target.bucket),
            ("--account-id", account_id, target.account_id),
        ):
            if given and found and given != found:
                raise click.ClickException(f"{option} {given} but stack {stack} says {found}")
        if rejects_stream_name and not target.rejects_stream_name:  # made outside the stack
            target = dataclasses.replace(target, rejects_stream_name=rejects_stream_name)
    else:
        missing = [
            name
            for name, value in (
                ("--stream-name", stream_name),
                ("--bucket", bucket),
                ("--region", region),
                ("--account-id", account_id),
            )
            if not value
        ]
        if missing:
            raise click.UsageError(f"missing {', '.join(missing)} (or pass --from-stack STACK)")
        assert stream_name and bucket and region and account_id
        target = ProdTarget(
            stream_name, bucket, region, account_id, allowed, rejects_stream_name or ""
        )

    chalice_dir = project_dir / ".chalice"
    paths = {
        "config": chalice_dir / "config.json",
        "api": chalice_dir / API_POLICY_FILE,
        "convert": chalice_dir / CONVERT_POLICY_FILE,
    }
    files = ProjectFiles(
        _read_json(paths["config"]), _read_json(paths["api"]), _read_json(paths["convert"])
    )
    try:
        updated = configure_project(files, target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _write_json(paths["config"], updated.config)
    _write_json(paths["api"], updated.api_policy)
    _write_json(paths["convert"], updated.convert_policy)
    prefixes = stage_prefixes(updated.config)
    echo(f"prod stage now writes to stream {target.stream_arn}")
    for rejects in target.stream_arns[1:] or ["(none: pass --rejects-stream-name)"]:
        echo(f"  and keeps rejects in stream {rejects}")
    echo(
        f"  and converts in s3://{target.bucket}/ "
        f"({prefixes['RAW_PREFIX']} → {prefixes['CSV_PREFIX']}, {prefixes['ERRORS_PREFIX']})"
    )
    echo(f"  allowed origins: {', '.join(target.origins)}")
    echo(f"updated {paths['config']}, {paths['api']}, {paths['convert']}")
    echo(
        f"next: AWS_DEFAULT_REGION={target.region} chalice deploy --stage prod "
        "(deploy into the stream's region and account)"
    )
