"""Operator commands: smoke-test against a real `chalice local`, apply-throttling
against moto's API Gateway (and a Stubber pinning the exact patch operations),
configure-prod on a copy of the project's .chalice/ directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from exporter import ops
from tests.conftest import aws_client, free_port

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / ".chalice"


# --------------------------------------------------------------------------------------
# smoke-test
# --------------------------------------------------------------------------------------


def test_smoke_test_passes_against_chalice_local(chalice_local: tuple[str, Path]) -> None:
    base, data_dir = chalice_local
    result = CliRunner().invoke(
        ops.smoke_test, [base, "--origin", "http://localhost:5173", "--timeout", "10"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(" ", 1)[0] for line in lines[:4]] == ["PASS"] * 4, result.output
    assert lines[-1].startswith("smokeTestId: ")
    smoke_id = lines[-1].split()[1]

    stored = [
        json.loads(line)
        for path in (data_dir / "raw").rglob("*")
        if path.is_file()
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    tagged = [r for r in stored if r.get("metricAttributes", {}).get("smokeTestId") == smoke_id]
    assert len(tagged) == 1, stored
    assert tagged[0]["metricName"] == "SmokeTest"


def test_smoke_test_without_trailing_slash_joins_paths(chalice_local: tuple[str, Path]) -> None:
    base, _ = chalice_local
    result = CliRunner().invoke(ops.smoke_test, [base.rstrip("/")])
    assert result.exit_code == 0, result.output


def test_smoke_test_closed_port_is_one_line() -> None:
    port = free_port()  # bound and released: nothing listens there now
    result = CliRunner().invoke(ops.smoke_test, [f"http://127.0.0.1:{port}/", "--timeout", "3"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("FAIL ")
    assert f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_smoke_checks_report_each_failure() -> None:
    """A stage that answers but misbehaves: every check says what is wrong."""

    def broken(method: str, url: str, **_kwargs: Any) -> ops.Reply:
        if url.endswith("/health"):
            return ops.Reply(502, {}, b'{"message": "Internal server error"}')
        if method == "OPTIONS":
            return ops.Reply(403, {"Vary": "Origin"}, b'{"message": "origin not allowed"}')
        return ops.Reply(200, {}, b'{"accepted": 0, "rejected": []}')

    checks = list(
        ops.run_smoke_checks("https://x.example/api/", "https://a.example", "id", broken, 1, 0)
    )
    assert [c.ok for c in checks] == [False, False, False, False]
    assert "ALLOWED_ORIGINS" in checks[1].detail
    assert "accepted=0" in checks[2].detail


def test_smoke_event_body_is_one_valid_tagged_event() -> None:
    from chalicelib.config import Limits
    from chalicelib.validate import BatchValidator, parse_body

    raw = ops.smoke_event_body("abc", 1_700_000_000_000)
    validator = BatchValidator(Limits())
    result = validator.process(parse_body(raw, "text/plain", validator.limits), 1_700_000_000_500)
    assert len(result.records) == 1 and not result.rejected
    assert json.loads(result.records[0])["metricAttributes"] == {"smokeTestId": "abc"}


# --------------------------------------------------------------------------------------
# apply-throttling
# --------------------------------------------------------------------------------------


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


def test_apply_throttling_by_name_against_moto(moto_endpoint: str) -> None:
    client = aws_client("apigateway", moto_endpoint)
    api_id = _rest_api_with_stage(client, "throttle-by-name", "api")
    result = CliRunner().invoke(
        ops.apply_throttling,
        [
            "--api-name",
            "throttle-by-name",
            "--region",
            "us-east-1",
            "--endpoint-url",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"REST API {api_id} stage api" in result.output
    assert "rate 2000 requests/s, burst 5000" in result.output
    settings = client.get_stage(restApiId=api_id, stageName="api")["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == 2000.0
    assert settings["throttlingBurstLimit"] == 5000


def test_apply_throttling_by_id_with_custom_limits(moto_endpoint: str) -> None:
    client = aws_client("apigateway", moto_endpoint)
    api_id = _rest_api_with_stage(client, "throttle-by-id", "prod-stage")
    result = CliRunner().invoke(
        ops.apply_throttling,
        [
            "--rest-api-id",
            api_id,
            "--stage",
            "prod-stage",
            "--rate",
            "100",
            "--burst",
            "200",
            "--region",
            "us-east-1",
            "--endpoint-url",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 0, result.output
    settings = client.get_stage(restApiId=api_id, stageName="prod-stage")["methodSettings"]
    assert settings["*/*"]["throttlingRateLimit"] == 100.0
    assert settings["*/*"]["throttlingBurstLimit"] == 200


def test_apply_throttling_api_not_found(moto_endpoint: str) -> None:
    result = CliRunner().invoke(
        ops.apply_throttling,
        ["--api-name", "no-such-api", "--region", "us-east-1", "--endpoint-url", moto_endpoint],
    )
    assert result.exit_code == 1
    assert "no REST API named 'no-such-api'" in result.output
    assert "Traceback" not in result.output


def test_apply_throttling_missing_stage(moto_endpoint: str) -> None:
    client = aws_client("apigateway", moto_endpoint)
    api_id = _rest_api_with_stage(client, "throttle-no-stage", "api")
    result = CliRunner().invoke(
        ops.apply_throttling,
        [
            "--rest-api-id",
            api_id,
            "--stage",
            "nope",
            "--region",
            "us-east-1",
            "--endpoint-url",
            moto_endpoint,
        ],
    )
    assert result.exit_code == 1
    assert "has no stage 'nope'" in result.output


def test_apply_throttling_without_credentials(tmp_path: Path) -> None:
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
        "AWS_WEB_IDENTITY_TOKEN_FILE": None,
    }
    port = free_port()  # never reached: signing fails first
    result = CliRunner(env=env).invoke(
        ops.apply_throttling,
        ["--region", "us-east-1", "--endpoint-url", f"http://127.0.0.1:{port}"],
    )
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
        api_id = ops.find_rest_api_id(client, "owned-analytics")
        settings = ops.apply_stage_throttling(client, api_id, "api", 2000.0, 5000)
        stub.assert_no_pending_responses()
    assert settings == {"throttlingRateLimit": 2000.0, "throttlingBurstLimit": 5000}


def test_patch_operation_values() -> None:
    assert ops.throttling_patch_operations(2.5, 3) == [
        {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": "2.5"},
        {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": "3"},
    ]


# --------------------------------------------------------------------------------------
# configure-prod
# --------------------------------------------------------------------------------------

STREAM_ARN = "arn:aws:firehose:eu-west-1:210987654321:deliverystream/my-events"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(
        CHALICE_DIR, tmp_path / ".chalice", ignore=shutil.ignore_patterns("deployed", "deployments")
    )
    return tmp_path


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _resources(policy: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for statement in policy["Statement"]:
        resource = statement["Resource"]
        found.extend([resource] if isinstance(resource, str) else resource)
    return found


def _assert_configured(project: Path, bucket: str) -> None:
    config = _load(project / ".chalice" / "config.json")
    env = config["stages"]["prod"]["environment_variables"]
    assert env["FIREHOSE_STREAM_NAME"] == "my-events"
    assert env["ANALYTICS_BUCKET"] == bucket
    assert env["ALLOWED_ORIGINS"] == "https://a.example.com,https://b.example.com:8443"
    # Everything else is untouched.
    original = _load(CHALICE_DIR / "config.json")
    assert config["stages"]["dev"] == original["stages"]["dev"]
    assert (
        env["MAX_BODY_BYTES"]
        == original["stages"]["prod"]["environment_variables"]["MAX_BODY_BYTES"]
    )
    assert "AWS_REGION" not in env  # reserved by Lambda

    api = _load(project / ".chalice" / "policy-prod.json")
    assert [r for r in _resources(api) if ":firehose:" in r] == [STREAM_ARN]
    convert = _load(project / ".chalice" / "policy-prod-convert.json")
    s3 = sorted(r for r in _resources(convert) if ":s3:::" in r)
    assert s3 == sorted(
        [
            f"arn:aws:s3:::{bucket}",
            f"arn:aws:s3:::{bucket}/raw/*",
            f"arn:aws:s3:::{bucket}/csv/*",
            f"arn:aws:s3:::{bucket}/errors/*",
        ]
    )
    # Actions and conditions are the reviewed ones, unchanged.
    original_convert = _load(CHALICE_DIR / "policy-prod-convert.json")
    assert [s["Action"] for s in convert["Statement"]] == [
        s["Action"] for s in original_convert["Statement"]
    ]
    assert [s.get("Condition") for s in convert["Statement"]] == [
        s.get("Condition") for s in original_convert["Statement"]
    ]


def test_configure_prod_with_explicit_values(project: Path) -> None:
    result = CliRunner().invoke(
        ops.configure_prod,
        [
            "--stream-name",
            "my-events",
            "--bucket",
            "my-analytics-bucket",
            "--region",
            "eu-west-1",
            "--account-id",
            "210987654321",
            "--origins",
            "https://a.example.com, https://b.example.com:8443",
            "--project-dir",
            str(project),
        ],
    )
    assert result.exit_code == 0, result.output
    assert STREAM_ARN in result.output
    _assert_configured(project, "my-analytics-bucket")


def test_configure_prod_from_stack(project: Path, moto_endpoint: str) -> None:
    cfn = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="eu-west-1")
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "stk-b"}}},
        "Outputs": {
            "StreamName": {"Value": "my-events"},
            "StreamArn": {"Value": STREAM_ARN},
            "BucketName": {"Value": {"Ref": "Bucket"}},
        },
    }
    cfn.create_stack(StackName="analytics-test-stack", TemplateBody=json.dumps(template))
    origins = ["--origins", "https://a.example.com,https://b.example.com:8443"]
    common = [*origins, "--project-dir", str(project), "--endpoint-url", moto_endpoint]
    result = CliRunner().invoke(
        ops.configure_prod,
        ["--from-stack", "analytics-test-stack", "--region", "eu-west-1", *common],
    )
    assert result.exit_code == 0, result.output
    _assert_configured(project, "stk-b")

    # Another region has no such stack: one clear line.
    result = CliRunner().invoke(
        ops.configure_prod,
        ["--from-stack", "analytics-test-stack", "--region", "us-east-1", *common],
    )
    assert result.exit_code == 1
    assert "no CloudFormation stack 'analytics-test-stack'" in result.output
    # An explicit value that contradicts the stack is refused.
    result = CliRunner().invoke(
        ops.configure_prod,
        [
            "--from-stack",
            "analytics-test-stack",
            "--region",
            "eu-west-1",
            "--bucket",
            "other",
            *common,
        ],
    )
    assert result.exit_code == 1
    assert "--bucket other but stack analytics-test-stack says stk-b" in result.output


def test_target_from_stack_outputs_checks_region() -> None:
    outputs = {"StreamName": "my-events", "StreamArn": STREAM_ARN, "BucketName": "b-bucket"}
    with pytest.raises(ValueError, match="--region us-east-1 but the stream is in eu-west-1"):
        ops.target_from_stack_outputs(outputs, "us-east-1", ("https://a.example",))
    with pytest.raises(ValueError, match="no output BucketName"):
        ops.target_from_stack_outputs({"StreamArn": STREAM_ARN}, None, ("https://a.example",))


def test_configure_prod_refuses_bad_input(project: Path) -> None:
    base = ["--project-dir", str(project)]
    explicit = ["--stream-name", "s", "--bucket", "my-bucket", "--region", "us-east-1"]
    cases = [
        ([*explicit, "--account-id", "123", "--origins", "https://a.example"], "12 digits"),
        ([*explicit, "--account-id", "123456789012", "--origins", "*"], "no '*'"),
        (
            [*explicit, "--account-id", "123456789012", "--origins", "https://a.example/"],
            "no path or trailing slash",
        ),
        (["--origins", "https://a.example"], "missing --stream-name"),
        (
            [
                "--stream-name",
                "s",
                "--bucket",
                "Bad_Bucket",
                "--region",
                "us-east-1",
                "--account-id",
                "123456789012",
                "--origins",
                "https://a.example",
            ],
            "not an S3 bucket name",
        ),
    ]
    before = {p.name: p.read_bytes() for p in (project / ".chalice").iterdir()}
    for args, message in cases:
        result = CliRunner().invoke(ops.configure_prod, args + base)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    after = {p.name: p.read_bytes() for p in (project / ".chalice").iterdir()}
    assert after == before  # nothing written on a refusal


def test_rewrite_policy_is_pure_and_keeps_logs() -> None:
    policy = _load(CHALICE_DIR / "policy-prod.json")
    snapshot = json.dumps(policy, sort_keys=True)
    target = ops.ProdTarget("s2", "b2-bucket", "cn-north-1", "123456789012", ("https://a.cn",))
    rewritten = ops.rewrite_policy(policy, target)
    assert json.dumps(policy, sort_keys=True) == snapshot
    resources = _resources(rewritten)
    assert "arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/s2" in resources
    assert "arn:aws-cn:logs:*:*:*" in resources


def test_rewrite_config_keeps_custom_prefixes() -> None:
    config = _load(CHALICE_DIR / "config.json")
    config["stages"]["prod"]["environment_variables"]["RAW_PREFIX"] = "incoming"
    target = ops.ProdTarget("s", "bucket-x", "us-east-1", "123456789012", ("https://a.example",))
    rewritten = ops.rewrite_config(config, target)
    assert ops.stage_prefixes(rewritten)["RAW_PREFIX"] == "incoming/"
    policy = ops.rewrite_policy(_load(CHALICE_DIR / "policy-prod-convert.json"), target)
    # The policy still says raw/: the scope check notices the mismatch and refuses.
    with pytest.raises(ValueError, match="outside"):
        ops.check_policy_scope(policy, target, ops.stage_prefixes(rewritten))
