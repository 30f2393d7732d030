"""Operator commands: configure the prod stage, throttle the API stage, smoke-test it.

Three click commands, registered on the ``python -m exporter`` group by ``cli.py``:

- ``configure-prod`` rewrites ``.chalice/config.json`` (prod environment) and both
  prod policy files so that they name exactly one stream and one bucket's prefixes;
- ``apply-throttling`` sets API Gateway stage throttling after ``chalice deploy``
  (Chalice has no configuration key for it);
- ``smoke-test`` checks a running endpoint end to end with the standard library only.

The JSON rewriting is pure functions (dict in, dict out) so it is tested offline.
"""

from __future__ import annotations

import copy
import json
import os
import re
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import Request, urlopen

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_apigateway.type_defs import PatchOperationTypeDef

PROD_STAGE = "prod"
API_POLICY_FILE = "policy-prod.json"
CONVERT_POLICY_FILE = "policy-prod-convert.json"
DEFAULT_API_NAME = "owned-analytics"
DEFAULT_API_STAGE = "api"
RATE_LIMIT_PATH = "/*/*/throttling/rateLimit"
BURST_LIMIT_PATH = "/*/*/throttling/burstLimit"

_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_STREAM_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):firehose:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"deliverystream/(?P<name>[a-zA-Z0-9_.-]{1,64})$"
)


# --------------------------------------------------------------------------------------
# configure-prod: pure functions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProdTarget:
    """The one stream and bucket the prod stage uses, and where they live."""

    stream_name: str
    bucket: str
    region: str
    account_id: str
    origins: tuple[str, ...]

    @property
    def partition(self) -> str:
        return partition_for(self.region)

    @property
    def stream_arn(self) -> str:
        return (
            f"arn:{self.partition}:firehose:{self.region}:{self.account_id}:"
            f"deliverystream/{self.stream_name}"
        )

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
    if not _STREAM_NAME.match(target.stream_name):
        raise ValueError(f"stream name {target.stream_name!r} is not a Firehose stream name")
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
    env["ANALYTICS_BUCKET"] = target.bucket
    env["ALLOWED_ORIGINS"] = ",".join(target.origins)
    return result


def _retarget_arn(arn: str, target: ProdTarget) -> str:
    """Point one ARN of a policy at the target's stream or bucket, keeping its shape."""
    if ":firehose:" in arn and ":deliverystream/" in arn:
        return target.stream_arn
    s3 = re.match(r"^arn:aws[a-z-]*:s3:::(?P<bucket>[^/]+)(?P<path>/.*)?$", arn)
    if s3:
        return target.bucket_arn + (s3.group("path") or "")
    logs = re.match(r"^arn:aws[a-z-]*:(?P<rest>logs:.*)$", arn)
    if logs:
        return f"arn:{target.partition}:{logs.group('rest')}"
    return arn


def rewrite_policy(policy: Mapping[str, Any], target: ProdTarget) -> dict[str, Any]:
    """A copy of an IAM policy whose Firehose/S3 ARNs name the target's stream and bucket.

    Statements, actions, prefixes and conditions are kept as they are: the files are the
    reviewed least-privilege policies, only the names in them change.
    """
    result = copy.deepcopy(dict(policy))
    statements = result.get("Statement")
    if not isinstance(statements, list):
        raise ValueError("policy has no Statement list")
    for statement in statements:
        resource = statement.get("Resource")
        if isinstance(resource, str):
            statement["Resource"] = _retarget_arn(resource, target)
        elif isinstance(resource, list):
            statement["Resource"] = [_retarget_arn(str(item), target) for item in resource]
    return result


def check_policy_scope(
    policy: Mapping[str, Any], target: ProdTarget, prefixes: Mapping[str, str]
) -> None:
    """Refuse to write a policy that names anything but the stream and the bucket's prefixes."""
    allowed_objects = {f"{target.bucket_arn}/{prefix}*" for prefix in prefixes.values()}
    for statement in policy.get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            if ":firehose:" in resource and resource != target.stream_arn:
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
    for policy in (api_policy, convert_policy):
        check_policy_scope(policy, target, prefixes)
    return ProjectFiles(config, api_policy, convert_policy)


def target_from_stack_outputs(
    outputs: Mapping[str, str], region: str | None, origins: tuple[str, ...]
) -> ProdTarget:
    """StreamName/StreamArn/BucketName outputs of infrastructure/pipeline.yaml → a target."""
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
    return ProdTarget(
        stream_name=stream_name,
        bucket=outputs["BucketName"],
        region=match.group("region"),
        account_id=match.group("account"),
        origins=origins,
    )


# --------------------------------------------------------------------------------------
# AWS helpers shared by the commands
# --------------------------------------------------------------------------------------


@contextmanager
def _aws_errors(service: str) -> Iterator[None]:
    """boto3/botocore errors become one line and exit code 1, never a traceback."""
    try:
        yield
    except NoCredentialsError:
        raise click.ClickException(
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY (the standard credential chain)"
        ) from None
    except NoRegionError:
        raise click.ClickException(
            "no AWS region: pass --region or set AWS_DEFAULT_REGION"
        ) from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = error.get("Message", str(exc))
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException"):
            raise click.ClickException(f"{service} refused the call ({code}): {message}") from None
        raise click.ClickException(f"{service} error {code}: {message}") from None
    except BotoCoreError as exc:
        raise click.ClickException(f"could not reach {service}: {exc}") from None


def _session(region: str | None) -> Any:
    import boto3

    # A fresh session resolves credentials now, through the standard chain.
    return boto3.session.Session(region_name=region)


def read_stack_outputs(
    stack: str, region: str | None, endpoint_url: str | None = None
) -> dict[str, str]:
    with _aws_errors("CloudFormation"):
        client = _session(region).client("cloudformation", endpoint_url=endpoint_url)
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


# --------------------------------------------------------------------------------------
# configure-prod
# --------------------------------------------------------------------------------------


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
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Project root holding .chalice/.",
)
@click.option("--endpoint-url", hidden=True, help="CloudFormation endpoint (tests).")
def configure_prod(
    stream_name: str | None,
    bucket: str | None,
    region: str | None,
    account_id: str | None,
    origins: str,
    stack: str | None,
    project_dir: Path,
    endpoint_url: str | None,
) -> None:
    """Point the prod stage at one stream and bucket: config.json and both policies."""
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
            ("--bucket", bucket, target.bucket),
            ("--account-id", account_id, target.account_id),
        ):
            if given and given != found:
                raise click.ClickException(f"{option} {given} but stack {stack} says {found}")
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
        target = ProdTarget(stream_name, bucket, region, account_id, allowed)

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
    click.echo(f"prod stage now writes to stream {target.stream_arn}")
    click.echo(
        f"  and converts in s3://{target.bucket}/ "
        f"({prefixes['RAW_PREFIX']} → {prefixes['CSV_PREFIX']}, {prefixes['ERRORS_PREFIX']})"
    )
    click.echo(f"  allowed origins: {', '.join(target.origins)}")
    click.echo(f"updated {paths['config']}, {paths['api']}, {paths['convert']}")
    click.echo(
        f"next: AWS_DEFAULT_REGION={target.region} chalice deploy --stage prod "
        "(deploy into the stream's region and account)"
    )


# --------------------------------------------------------------------------------------
# apply-throttling
# --------------------------------------------------------------------------------------


def throttling_patch_operations(rate: float, burst: int) -> list[PatchOperationTypeDef]:
    """Stage-wide (every resource, every method) throttling as update_stage patches."""

    def number(value: float) -> str:
        return str(int(value)) if float(value).is_integer() else repr(float(value))

    return [
        {"op": "replace", "path": RATE_LIMIT_PATH, "value": number(rate)},
        {"op": "replace", "path": BURST_LIMIT_PATH, "value": str(burst)},
    ]


def find_rest_api_id(client: APIGatewayClient, name: str) -> str:
    ids = [
        item["id"]
        for page in client.get_paginator("get_rest_apis").paginate()
        for item in page.get("items", [])
        if item.get("name") == name and "id" in item
    ]
    if not ids:
        raise click.ClickException(
            f"no REST API named {name!r} in this account and region: run "
            "`chalice deploy --stage prod` first, check --region, or pass --rest-api-id"
        )
    if len(ids) > 1:
        raise click.ClickException(
            f"{len(ids)} REST APIs are named {name!r} ({', '.join(ids)}): pass --rest-api-id "
            "(the id is in the URL `chalice url --stage prod` prints)"
        )
    return ids[0]


def apply_stage_throttling(
    client: APIGatewayClient, rest_api_id: str, stage: str, rate: float, burst: int
) -> dict[str, Any]:
    """Set the limits and return the stage's ``*/*`` method settings as API Gateway has them."""
    try:
        client.get_stage(restApiId=rest_api_id, stageName=stage)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            raise click.ClickException(
                f"REST API {rest_api_id} has no stage {stage!r} (or no such API): "
                "check --stage (chalice's api_gateway_stage) and --rest-api-id"
            ) from None
        raise
    answer = client.update_stage(
        restApiId=rest_api_id,
        stageName=stage,
        patchOperations=throttling_patch_operations(rate, burst),
    )
    settings: dict[str, Any] = dict(answer.get("methodSettings", {}).get("*/*", {}))
    return settings


@click.command("apply-throttling")
@click.option(
    "--api-name",
    default=DEFAULT_API_NAME,
    show_default=True,
    help="REST API name (chalice's app_name) to look up when no --rest-api-id is given.",
)
@click.option("--rest-api-id", help="REST API id, e.g. from `chalice url --stage prod`.")
@click.option(
    "--stage",
    default=DEFAULT_API_STAGE,
    show_default=True,
    help="API Gateway stage (api_gateway_stage in .chalice/config.json).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=2000.0,
    show_default=True,
    help="Steady-state requests per second for the whole stage.",
)
@click.option(
    "--burst",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Burst capacity (requests) for the whole stage.",
)
@click.option("--region", help="Region of the API. Default: the standard chain.")
@click.option("--endpoint-url", help="API Gateway endpoint (LocalStack, moto).")
def apply_throttling(
    api_name: str,
    rest_api_id: str | None,
    stage: str,
    rate: float,
    burst: int,
    region: str | None,
    endpoint_url: str | None,
) -> None:
    """Set API Gateway stage throttling (every route) after `chalice deploy`.

    Chalice has no setting for it. Idempotent: run it after every deploy.
    """
    with _aws_errors("API Gateway"):
        client: APIGatewayClient = _session(region).client("apigateway", endpoint_url=endpoint_url)
        api_id = rest_api_id or find_rest_api_id(client, api_name)
        settings = apply_stage_throttling(client, api_id, stage, rate, burst)
    shown_rate = settings.get("throttlingRateLimit", rate)
    shown_burst = settings.get("throttlingBurstLimit", burst)
    click.echo(
        f"throttling set on REST API {api_id} stage {stage} (all methods, */*): "
        f"rate {shown_rate:g} requests/s, burst {shown_burst}"
    )
    click.echo(
        "requests over the limit get 429 from API Gateway before Lambda runs; "
        "the browser client retries them with backoff"
    )


# --------------------------------------------------------------------------------------
# smoke-test
# --------------------------------------------------------------------------------------


class Unreachable(Exception):
    """The endpoint could not be reached at all (DNS, refused, TLS, timeout)."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def snippet(self, limit: int = 160) -> str:
        text = self.body.decode("utf-8", "replace").replace("\n", " ").strip()
        return text if len(text) <= limit else text[:limit] + "…"


def http_request(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request; any HTTP status is a Reply, anything else is ``Unreachable``."""
    request = Request(url, data=body, method=method, headers=dict(headers or {}))
    request.add_header("User-Agent", "owned-analytics-smoke-test/1")
    try:
        with urlopen(request, timeout=timeout) as response:
            return Reply(response.status, dict(response.headers.items()), response.read())
    except HTTPError as exc:
        with exc:
            return Reply(exc.code, dict(exc.headers.items()), exc.read())
    except URLError as exc:
        reason = exc.reason
        raise Unreachable(f"cannot reach {url}: {reason}") from None
    except TimeoutError:
        raise Unreachable(f"no answer from {url} within {timeout:g} s") from None
    except (ConnectionError, ssl.SSLError, OSError) as exc:
        raise Unreachable(f"cannot reach {url}: {exc}") from None


def smoke_event_body(smoke_test_id: str, now_ms: int) -> bytes:
    batch = {
        "sentAt": now_ms,
        "context": {"device": "smoke-test", "appVersion": "smoke-test"},
        "events": [
            {
                "eventId": f"smoke-{smoke_test_id}",
                "timestamp": now_ms,
                "sessionId": f"smoke-{smoke_test_id}",
                "metricName": "SmokeTest",
                "value": None,
                "metricAttributes": {"smokeTestId": smoke_test_id},
            }
        ],
    }
    return json.dumps(batch).encode("utf-8")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def _cors_ok(reply: Reply, origin: str) -> tuple[bool, str]:
    value = reply.header("Access-Control-Allow-Origin")
    if value in (origin, "*"):
        return True, f"Access-Control-Allow-Origin: {value}"
    if value is None:
        return False, f"no Access-Control-Allow-Origin (is {origin} in ALLOWED_ORIGINS?)"
    return False, f"Access-Control-Allow-Origin is {value!r}, not {origin!r} or '*'"


def run_smoke_checks(
    base_url: str,
    origin: str,
    smoke_test_id: str,
    request: Callable[..., Reply],
    timeout: float,
    now_ms: int,
) -> Iterator[Check]:
    """The four checks, in order; ``Unreachable`` escapes to the caller."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    health_url, events_url = urljoin(base, "health"), urljoin(base, "events")

    reply = request("GET", health_url, timeout=timeout)
    ok = reply.status == 200
    yield Check("GET /health", ok, f"{reply.status} {reply.snippet()}")

    reply = request(
        "OPTIONS",
        events_url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=timeout,
    )
    cors_ok, cors_detail = _cors_ok(reply, origin)
    ok = reply.status in (200, 204) and cors_ok
    yield Check("OPTIONS /events (preflight)", ok, f"{reply.status}, {cors_detail}")

    reply = request(
        "POST",
        events_url,
        headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"},
        body=smoke_event_body(smoke_test_id, now_ms),
        timeout=timeout,
    )
    answer = reply.json()
    accepted = answer.get("accepted") if isinstance(answer, dict) else None
    cors_ok, cors_detail = _cors_ok(reply, origin)
    ok = reply.status == 200 and accepted == 1 and cors_ok
    detail = f"{reply.status}, accepted={accepted}, {cors_detail}"
    if not ok:
        detail += f", body {reply.snippet()}"
    yield Check("POST /events (one SmokeTest event, text/plain)", ok, detail)

    reply = request(
        "POST",
        events_url,
        headers={"Origin": origin, "Content-Type": "text/plain;charset=UTF-8"},
        body=b'{"events": [',
        timeout=timeout,
    )
    answer = reply.json()
    message = answer.get("message") if isinstance(answer, dict) else None
    ok = reply.status == 400 and isinstance(message, str) and bool(message)
    detail = (
        f"{reply.status}, message={message!r}" if message else f"{reply.status} {reply.snippet()}"
    )
    yield Check("POST /events (malformed body → 400)", ok, detail)


@click.command("smoke-test")
@click.argument("url")
@click.option(
    "--origin",
    default="http://localhost",
    show_default=True,
    help="Origin to send; for prod use one of the stage's ALLOWED_ORIGINS.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each answer.",
)
def smoke_test(url: str, origin: str, timeout: float) -> None:
    """Check a running endpoint: health, CORS preflight, one event, a bad body.

    URL is the API's base, e.g. the output of `chalice url --stage prod` or
    http://127.0.0.1:8000/ for `chalice local`.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    smoke_test_id = str(uuid.uuid4())
    now_ms = time.time_ns() // 1_000_000
    failed = 0
    posted = False
    try:
        for check in run_smoke_checks(url, origin, smoke_test_id, http_request, timeout, now_ms):
            click.echo(check.line())
            failed += not check.ok
            posted = posted or check.name.startswith("POST /events (one")
    except Unreachable as exc:
        click.echo(f"FAIL {exc}")
        click.get_current_context().exit(1)
    if posted:
        click.echo(f"smokeTestId: {smoke_test_id} (metricName SmokeTest, attr_smokeTestId)")
    if failed:
        click.get_current_context().exit(1)
