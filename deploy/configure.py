"""Point the prod stage at its streams and bucket (the `configure-prod` command).

It rewrites ``.chalice/config.json`` (the prod environment) and the prod policy
files so that they name exactly the events Firehose stream (and the rejects stream,
when there is one), one bucket's prefixes and the stack's Athena workgroup and Glue
tables, from explicit values or from the outputs of the
``infrastructure/pipeline.yaml`` stack.
The JSON rewriting is pure functions (dict in, dict out) so it is tested offline.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError

from chalicelib.aws import make_client
from clitools import aws_errors, echo, project_dir_option
from deploy.target import (
    GivenTarget,
    MissingTargetValues,
    ProdTarget,
    StackOutputs,
    parse_origins,
    partition_for,
    resolve_target,
    target_from_stack_outputs,
    validate_target,
)

PROD_STAGE = "prod"
API_POLICY_FILE = "policy-prod.json"
CONVERT_POLICY_FILE = "policy-prod-convert.json"
DAILY_POLICY_FILE = "policy-prod-daily.json"

__all__ = [
    "ProdTarget",
    "ProjectFiles",
    "configure_prod",
    "configure_project",
    "parse_origins",
    "partition_for",
    "target_from_stack_outputs",
    "validate_target",
]

# --------------------------------------------------------------------------------------
# Pure: the documents in, the rewritten documents out
# --------------------------------------------------------------------------------------


def stage_prefixes(config: Mapping[str, Any], stage: str = PROD_STAGE) -> dict[str, str]:
    """The raw/csv/errors prefixes the stage's environment sets (defaults as Settings)."""
    env = config.get("stages", {}).get(stage, {}).get("environment_variables", {})
    defaults = {
        "RAW_PREFIX": "raw/",
        "CSV_PREFIX": "csv/",
        "ERRORS_PREFIX": "errors/",
        "PARQUET_PREFIX": "parquet/",
        "ATHENA_RESULTS_PREFIX": "athena-results/",
    }
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
    env["ATHENA_WORKGROUP"] = target.workgroup
    env["ATHENA_DATABASE"] = target.database
    env["ATHENA_TABLE"] = target.table
    return result


def _is_stream(arn: str) -> bool:
    return ":firehose:" in arn and ":deliverystream/" in arn


def _retarget_resources(resources: list[str], target: ProdTarget) -> list[str]:
    """A statement's resources pointed at the target; the streams it names become the
    target's streams (events, rejects), its Glue ARNs the target's catalog, database and
    two tables, its workgroup the target's; each once."""
    retargeted: list[str] = []
    for arn in resources:
        if _is_stream(arn):
            news: tuple[str, ...] = target.stream_arns
        elif ":glue:" in arn:
            news = target.glue_arns
        elif ":athena:" in arn:
            news = (target.workgroup_arn,)
        else:
            news = (_retarget_arn(arn, target),)
        for new in news:
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
            if ":glue:" in resource and resource not in target.glue_arns:
                raise ValueError(f"policy names another Glue resource: {resource}")
            if ":athena:" in resource and resource != target.workgroup_arn:
                raise ValueError(f"policy names another Athena resource: {resource}")
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
    """The files configure-prod writes: the Chalice config and the IAM policies."""

    config: dict[str, Any]
    api_policy: dict[str, Any]
    convert_policy: dict[str, Any]
    # The daily build's (the schedule and the Athena results handler); None: not given.
    daily_policy: dict[str, Any] | None = None


def configure_project(files: ProjectFiles, target: ProdTarget) -> ProjectFiles:
    """Every document rewritten, checked; nothing is written here."""
    validate_target(target)
    config = rewrite_config(files.config, target)
    prefixes = stage_prefixes(config)
    api_policy = rewrite_policy(files.api_policy, target)
    convert_policy = rewrite_policy(files.convert_policy, target)
    daily_policy = (
        None if files.daily_policy is None else rewrite_policy(files.daily_policy, target)
    )
    log_groups = log_groups_arn_prefix(target, str(config.get("app_name", "owned-analytics")))
    for policy in (api_policy, convert_policy, daily_policy):
        if policy is not None:
            check_policy_scope(policy, target, prefixes, log_groups)
    return ProjectFiles(config, api_policy, convert_policy, daily_policy)


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
    given = GivenTarget(stream_name, rejects_stream_name, bucket, region, account_id)
    outputs = (
        StackOutputs(stack, read_stack_outputs(stack, region, endpoint_url)) if stack else None
    )
    try:
        target = resolve_target(given, allowed, outputs)
    except MissingTargetValues as exc:
        raise click.UsageError(str(exc)) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    chalice_dir = project_dir / ".chalice"
    paths = {
        "config": chalice_dir / "config.json",
        "api": chalice_dir / API_POLICY_FILE,
        "convert": chalice_dir / CONVERT_POLICY_FILE,
        "daily": chalice_dir / DAILY_POLICY_FILE,
    }
    files = ProjectFiles(
        _read_json(paths["config"]),
        _read_json(paths["api"]),
        _read_json(paths["convert"]),
        _read_json(paths["daily"]),
    )
    try:
        updated = configure_project(files, target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    _write_json(paths["config"], updated.config)
    _write_json(paths["api"], updated.api_policy)
    _write_json(paths["convert"], updated.convert_policy)
    if updated.daily_policy is not None:
        _write_json(paths["daily"], updated.daily_policy)
    prefixes = stage_prefixes(updated.config)
    echo(f"prod stage now writes to stream {target.stream_arn}")
    for rejects in target.stream_arns[1:] or ["(none: pass --rejects-stream-name)"]:
        echo(f"  and keeps rejects in stream {rejects}")
    echo(
        f"  and converts in s3://{target.bucket}/ "
        f"({prefixes['RAW_PREFIX']} → {prefixes['CSV_PREFIX']}, {prefixes['ERRORS_PREFIX']})"
    )
    echo(
        f"  and builds big days and the Parquet copy on Athena: {target.workgroup_arn} "
        f"({target.database}.{target.table}, {target.database}.{target.parquet_table})"
    )
    echo(f"  allowed origins: {', '.join(target.origins)}")
    echo(f"updated {paths['config']}, {paths['api']}, {paths['convert']}, {paths['daily']}")
    echo(
        f"next: AWS_DEFAULT_REGION={target.region} chalice deploy --stage prod "
        "(deploy into the stream's region and account)"
    )
