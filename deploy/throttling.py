"""Set API Gateway stage throttling after `chalice deploy` (the `apply-throttling` command).

Chalice has no configuration key for stage throttling, so this patches the deployed
stage with ``UpdateStage``: one rate and one burst for every resource and method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from botocore.exceptions import ClientError

from chalicelib.aws import make_client
from clitools import aws_errors, echo

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_apigateway.type_defs import PatchOperationTypeDef

DEFAULT_API_NAME = "owned-analytics"
DEFAULT_API_STAGE = "api"
RATE_LIMIT_PATH = "/*/*/throttling/rateLimit"
BURST_LIMIT_PATH = "/*/*/throttling/burstLimit"


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
    with aws_errors("API Gateway"):
        client: APIGatewayClient = make_client(
            "apigateway", region=region, endpoint_url=endpoint_url
        )
        api_id = rest_api_id or find_rest_api_id(client, api_name)
        settings = apply_stage_throttling(client, api_id, stage, rate, burst)
    shown_rate = settings.get("throttlingRateLimit", rate)
    shown_burst = settings.get("throttlingBurstLimit", burst)
    echo(
        f"throttling set on REST API {api_id} stage {stage} (all methods, */*): "
        f"rate {shown_rate:g} requests/s, burst {shown_burst}"
    )
    echo(
        "requests over the limit get 429 from API Gateway before Lambda runs; "
        "the browser client retries them with backoff"
    )
