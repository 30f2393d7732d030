"""deploy.throttling: `apply-throttling` against moto's API Gateway, and a Stubber
pinning the exact patch operations it sends."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner, Result

from deploy import throttling
from tests.conftest import aws_client, free_port


def _rest_api_with_stage(client: Any, name: str, stage: str) -> str:
    api_id: str = client.create_rest_api(name=name)["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    resource = client.create_resource(restApiId=api_id, parentId=root, pathPart="health")["id"]
    client.put_method(
        restApiId=api_id, resourceId=resource, httpMethod="GET", authorizationType="NONE"
    )
    client.put_integration(restApiId=api_id, resourceId=resource, httpMethod="GET", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName=stage)
    return api_id


def apply(endpoint: str, *args: str) -> Result:
    """Run apply-throttling in us-east-1 against ``endpoint``."""
    return CliRunner().invoke(
        throttling.apply_throttling, [*args, "--region", "us-east-1", "--endpoint-url", endpoint]
    )


def test_apply_throttling_by_name_against_moto(moto_endpoint: str) -> None:
    client = aws_client("apigateway", moto_endpoint)
    api_id = _rest_api_with_stage(client, "throttle-by-name", "api")
    result = apply(moto_endpoint, "--api-name", "throttle-by-name")
    assert result.exit_code == 0, result.output
    assert f"REST API {api_id} stage api" in result.output
    assert "rate 2000 requests/s, burst 5000" in result.output
    settings = client.get_stage(restApiId=api_id, stageName="api")["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == 2000.0
    assert settings["throttlingBurstLimit"] == 5000


def test_apply_throttling_by_id_with_custom_limits(moto_endpoint: str) -> None:
    client = aws_client("apigateway", moto_endpoint)
    api_id = _rest_api_with_stage(client, "throttle-by-id", "prod-stage")
    result = apply(
        moto_endpoint,
        *("--rest-api-id", api_id, "--stage", "prod-stage", "--rate", "100", "--burst", "200"),
    )
    assert result.exit_code == 0, result.output
    settings = client.get_stage(restApiId=api_id, stageName="prod-stage")["methodSettings"]
    assert settings["*/*"]["throttlingRateLimit"] == 100.0
    assert settings["*/*"]["throttlingBurstLimit"] == 200


def test_apply_throttling_api_not_found(moto_endpoint: str) -> None:
    result = apply(moto_endpoint, "--api-name", "no-such-api")
    assert result.exit_code == 1
    assert "no REST API named 'no-such-api'" in result.output
    assert "Traceback" not in result.output


def test_apply_throttling_missing_stage(moto_endpoint: str) -> None:
    client = aws_client("apigateway", moto_endpoint)
    api_id = _rest_api_with_stage(client, "throttle-no-stage", "api")
    result = apply(moto_endpoint, "--rest-api-id", api_id, "--stage", "nope")
    assert result.exit_code == 1
    assert "has no stage 'nope'" in result.output


@pytest.mark.usefixtures("no_aws_credentials")
def test_apply_throttling_without_credentials() -> None:
    port = free_port()  # never reached: signing fails first
    result = apply(f"http://127.0.0.1:{port}")
    assert result.exit_code == 1
    assert "no AWS credentials found" in result.output
    assert "Traceback" not in result.output


def test_apply_stage_throttling_sends_exact_patch_operations() -> None:
    client = boto3.client(
        "apigateway",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with Stubber(client) as stub:
        stub.add_response(
            "get_rest_apis",
            {"items": [{"id": "other", "name": "x"}, {"id": "abc123", "name": "owned-analytics"}]},
            {},
        )
        stub.add_response(
            "get_stage", {"stageName": "api"}, {"restApiId": "abc123", "stageName": "api"}
        )
        stub.add_response(
            "update_stage",
            {
                "methodSettings": {
                    "*/*": {"throttlingRateLimit": 2000.0, "throttlingBurstLimit": 5000}
                }
            },
            {
                "restApiId": "abc123",
                "stageName": "api",
                "patchOperations": [
                    {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "2000"},
                    {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "5000"},
                ],
            },
        )
        api_id = throttling.find_rest_api_id(client, "owned-analytics")
        settings = throttling.apply_stage_throttling(client, api_id, "api", 2000.0, 5000)
        stub.assert_no_pending_responses()
    assert settings == {"throttlingRateLimit": 2000.0, "throttlingBurstLimit": 5000}


def test_patch_operation_values() -> None:
    assert throttling.throttling_patch_operations(2.5, 3) == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "2.5"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "3"},
    ]
