"""deploy.configure: `configure-prod` on a copy of the project's .chalice/ directory,
from explicit values and from a stack in moto's CloudFormation; its pure rewriting."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from deploy import configure

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / ".chalice"


STREAM_ARN = "arn:aws:firehose:eu-west-1:210987654321:deliverystream/my-events"
REJECTS_ARN = "arn:aws:firehose:eu-west-1:210987654321:deliverystream/my-rejects"


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


def _assert_configured(project: Path, bucket: str, rejects: str = "my-rejects") -> None:
    config = _load(project / ".chalice" / "config.json")
    env = config["stages"]["prod"]["environment_variables"]
    assert env["FIREHOSE_STREAM_NAME"] == "my-events"
    assert env["REJECTS_STREAM_NAME"] == rejects
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
    streams = [STREAM_ARN, REJECTS_ARN] if rejects else [STREAM_ARN]
    assert [r for r in _resources(api) if ":firehose:" in r] == streams
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
    # The daily build's policy: the same bucket, and Athena/Glue where the stream is.
    daily = _load(project / ".chalice" / "policy-prod-daily.json")
    resources = _resources(daily)
    assert {r.split(":::")[1].split("/")[0] for r in resources if ":s3:::" in r} == {bucket}
    assert [r for r in resources if ":athena:" in r] == [
        "arn:aws:athena:eu-west-1:210987654321:workgroup/owned-analytics"
    ]
    glue = [r for r in resources if ":glue:" in r]
    assert glue and all(r.startswith("arn:aws:glue:eu-west-1:210987654321:") for r in glue)
    assert env["ATHENA_WORKGROUP"] == "owned-analytics"


def test_configure_prod_with_explicit_values(project: Path) -> None:
    result = CliRunner().invoke(
        configure.configure_prod,
        [
            "--stream-name",
            "my-events",
            "--rejects-stream-name",
            "my-rejects",
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
    assert STREAM_ARN in result.output and REJECTS_ARN in result.output
    _assert_configured(project, "my-analytics-bucket")


def test_configure_prod_from_stack(project: Path, moto_endpoint: str) -> None:
    cfn = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="eu-west-1")
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "stk-b"}}},
        "Outputs": {
            "StreamName": {"Value": "my-events"},
            "StreamArn": {"Value": STREAM_ARN},
            "RejectsStreamName": {"Value": "my-rejects"},
            "RejectsStreamArn": {"Value": REJECTS_ARN},
            "BucketName": {"Value": {"Ref": "Bucket"}},
        },
    }
    cfn.create_stack(StackName="analytics-test-stack", TemplateBody=json.dumps(template))
    origins = ["--origins", "https://a.example.com,https://b.example.com:8443"]
    common = [*origins, "--project-dir", str(project), "--endpoint-url", moto_endpoint]
    result = CliRunner().invoke(
        configure.configure_prod,
        ["--from-stack", "analytics-test-stack", "--region", "eu-west-1", *common],
    )
    assert result.exit_code == 0, result.output
    _assert_configured(project, "stk-b")

    # Another region has no such stack: one clear line.
    result = CliRunner().invoke(
        configure.configure_prod,
        ["--from-stack", "analytics-test-stack", "--region", "us-east-1", *common],
    )
    assert result.exit_code == 1
    assert "no CloudFormation stack 'analytics-test-stack'" in result.output
    # An explicit value that contradicts the stack is refused.
    result = CliRunner().invoke(
        configure.configure_prod,
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
        configure.target_from_stack_outputs(outputs, "us-east-1", ("https://a.example",))
    with pytest.raises(ValueError, match="no output BucketName"):
        configure.target_from_stack_outputs({"StreamArn": STREAM_ARN}, None, ("https://a.example",))


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
        result = CliRunner().invoke(configure.configure_prod, args + base)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    after = {p.name: p.read_bytes() for p in (project / ".chalice").iterdir()}
    assert after == before  # nothing written on a refusal


def test_rewrite_policy_is_pure_and_keeps_logs() -> None:
    policy = _load(CHALICE_DIR / "policy-prod.json")
    snapshot = json.dumps(policy, sort_keys=True)
    target = configure.ProdTarget(
        "s2", "b2-bucket", "cn-north-1", "123456789012", ("https://a.cn",)
    )
    rewritten = configure.rewrite_policy(policy, target)
    assert json.dumps(policy, sort_keys=True) == snapshot
    resources = _resources(rewritten)
    assert "arn:aws-cn:firehose:cn-north-1:123456789012:deliverystream/s2" in resources
    assert (
        "arn:aws-cn:logs:cn-north-1:123456789012:log-group:/aws/lambda/owned-analytics-prod"
        in resources
    )


def test_rewrite_config_keeps_custom_prefixes() -> None:
    config = _load(CHALICE_DIR / "config.json")
    config["stages"]["prod"]["environment_variables"]["RAW_PREFIX"] = "incoming"
    target = configure.ProdTarget(
        "s", "bucket-x", "us-east-1", "123456789012", ("https://a.example",)
    )
    rewritten = configure.rewrite_config(config, target)
    assert configure.stage_prefixes(rewritten)["RAW_PREFIX"] == "incoming/"
    policy = configure.rewrite_policy(_load(CHALICE_DIR / "policy-prod-convert.json"), target)
    # The policy still says raw/: the scope check notices the mismatch and refuses.
    with pytest.raises(ValueError, match="outside"):
        configure.check_policy_scope(policy, target, configure.stage_prefixes(rewritten))


def _target(**overrides: Any) -> configure.ProdTarget:
    values: dict[str, Any] = {
        "stream_name": "my-events",
        "bucket": "my-bucket",
        "region": "eu-west-1",
        "account_id": "210987654321",
        "origins": ("https://a.example",),
        "rejects_stream_name": "my-rejects",
    }
    values.update(overrides)
    return configure.ProdTarget(**values)


def test_the_api_policy_names_both_streams_and_nothing_else() -> None:
    files = configure.ProjectFiles(
        _load(CHALICE_DIR / "config.json"),
        _load(CHALICE_DIR / "policy-prod.json"),
        _load(CHALICE_DIR / "policy-prod-convert.json"),
    )
    updated = configure.configure_project(files, _target())
    assert [r for r in _resources(updated.api_policy) if ":firehose:" in r] == [
        STREAM_ARN,
        REJECTS_ARN,
    ]
    # A policy naming one stream (before this project kept rejects) gains the second.
    old = copy.deepcopy(files.api_policy)
    old["Statement"][0]["Resource"] = "arn:aws:firehose:us-east-1:1:deliverystream/x"
    rewritten = configure.rewrite_policy(old, _target())
    assert rewritten["Statement"][0]["Resource"] == [STREAM_ARN, REJECTS_ARN]
    # Without a rejects stream: exactly the events stream, and no rejects in the config.
    alone = configure.configure_project(files, _target(rejects_stream_name=""))
    assert alone.api_policy["Statement"][0]["Resource"] == [STREAM_ARN]
    assert alone.config["stages"]["prod"]["environment_variables"]["REJECTS_STREAM_NAME"] == ""
    # The scope check allows exactly the two streams.
    widened = copy.deepcopy(updated.api_policy)
    widened["Statement"][0]["Resource"].append(STREAM_ARN.replace("my-events", "other"))
    with pytest.raises(ValueError, match="another stream"):
        configure.check_policy_scope(widened, _target(), {})
    with pytest.raises(ValueError, match="must not be the events stream"):
        configure.validate_target(_target(rejects_stream_name="my-events"))
    with pytest.raises(ValueError, match="not a Firehose stream name"):
        configure.validate_target(_target(rejects_stream_name="bad name"))


def test_stack_outputs_name_the_rejects_stream_or_not() -> None:
    outputs = {"StreamArn": STREAM_ARN, "BucketName": "b-bucket"}
    origins = ("https://a.example",)
    assert configure.target_from_stack_outputs(outputs, None, origins).rejects_stream_name == ""
    found = configure.target_from_stack_outputs(
        {**outputs, "RejectsStreamArn": REJECTS_ARN}, None, origins
    )
    assert found.stream_arns == (STREAM_ARN, REJECTS_ARN)
    elsewhere = REJECTS_ARN.replace("210987654321", "123456789012")
    with pytest.raises(ValueError, match="beside the events stream"):
        configure.target_from_stack_outputs(
            {**outputs, "RejectsStreamArn": elsewhere}, None, origins
        )


def test_a_stack_without_a_rejects_stream_takes_one_given(
    project: Path, moto_endpoint: str
) -> None:
    cfn = boto3.client("cloudformation", endpoint_url=moto_endpoint, region_name="eu-west-1")
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "old-b"}}},
        "Outputs": {"StreamArn": {"Value": STREAM_ARN}, "BucketName": {"Value": {"Ref": "Bucket"}}},
    }
    cfn.create_stack(StackName="analytics-old-stack", TemplateBody=json.dumps(template))
    common = ["--from-stack", "analytics-old-stack", "--region", "eu-west-1"]
    common += ["--origins", "https://a.example.com,https://b.example.com:8443"]
    common += ["--project-dir", str(project), "--endpoint-url", moto_endpoint]
    result = CliRunner().invoke(configure.configure_prod, common)
    assert result.exit_code == 0, result.output
    assert "keeps rejects in stream (none" in result.output
    _assert_configured(project, "old-b", rejects="")
    result = CliRunner().invoke(
        configure.configure_prod, [*common, "--rejects-stream-name", "my-rejects"]
    )
    assert result.exit_code == 0, result.output
    _assert_configured(project, "old-b")


def test_log_permissions_name_only_the_stage_functions_log_groups() -> None:
    target = _target()
    files = configure.ProjectFiles(
        _load(CHALICE_DIR / "config.json"),
        _load(CHALICE_DIR / "policy-prod.json"),
        _load(CHALICE_DIR / "policy-prod-convert.json"),
    )
    result = configure.configure_project(files, target)
    prefix = "arn:aws:logs:eu-west-1:210987654321:log-group:/aws/lambda/owned-analytics-prod"
    logs = [
        r
        for policy in (result.api_policy, result.convert_policy)
        for r in _resources(policy)
        if ":logs:" in r
    ]
    assert logs and all(r.startswith(prefix) for r in logs)
    broad = copy.deepcopy(files.api_policy)
    broad["Statement"][-1]["Resource"] = "arn:aws:logs:*:*:*"
    with pytest.raises(ValueError, match="logs outside"):
        configure.configure_project(
            configure.ProjectFiles(files.config, broad, files.convert_policy), target
        )


def test_the_daily_policy_follows_the_stacks_athena_names() -> None:
    outputs = {
        "StreamArn": STREAM_ARN,
        "BucketName": "b-bucket",
        "AthenaWorkGroup": "analytics-wg",
        "GlueDatabase": "my_db",
        "GlueTable": "lines",
        "ParquetTable": "daily",
    }
    target = configure.target_from_stack_outputs(outputs, None, ("https://a.example",))
    files = configure.ProjectFiles(
        _load(CHALICE_DIR / "config.json"),
        _load(CHALICE_DIR / "policy-prod.json"),
        _load(CHALICE_DIR / "policy-prod-convert.json"),
        _load(CHALICE_DIR / "policy-prod-daily.json"),
    )
    updated = configure.configure_project(files, target)
    assert updated.daily_policy is not None
    resources = _resources(updated.daily_policy)
    prefix = "arn:aws:glue:eu-west-1:210987654321:"
    assert [r for r in resources if ":glue:" in r] == [
        prefix + "catalog",
        prefix + "database/my_db",
        prefix + "table/my_db/lines",
        prefix + "table/my_db/daily",
    ]
    assert [r for r in resources if ":athena:" in r] == [
        "arn:aws:athena:eu-west-1:210987654321:workgroup/analytics-wg"
    ]
    env = updated.config["stages"]["prod"]["environment_variables"]
    assert (env["ATHENA_WORKGROUP"], env["ATHENA_DATABASE"], env["ATHENA_TABLE"]) == (
        "analytics-wg",
        "my_db",
        "lines",
    )
    # A policy naming another table is refused.
    widened = copy.deepcopy(updated.daily_policy)
    widened["Statement"][-2]["Resource"].append(prefix + "table/my_db/other")
    with pytest.raises(ValueError, match="another Glue resource"):
        configure.check_policy_scope(widened, target, configure.stage_prefixes(updated.config))
    with pytest.raises(ValueError, match="not a Glue database"):
        configure.validate_target(
            configure.ProdTarget(**{**target.__dict__, "database": "Bad-Name"})
        )
