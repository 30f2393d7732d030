"""Static checks of the CloudFormation templates under infrastructure/.

cfn-lint validates every template against the CloudFormation resource schemas
(errors, warnings and informational findings all fail), run once for all of them;
the remaining tests pin the properties the
pipeline depends on, so a well-meant edit cannot silently change the S3 layout,
open the bucket, or widen the Firehose role.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infrastructure"
TEMPLATES = (
    sorted(INFRA.glob("*.yaml")) + sorted(INFRA.glob("*.yml")) + sorted(INFRA.glob("*.json"))
)
PIPELINE = INFRA / "pipeline.yaml"
LINT_REGIONS = ["us-east-1", "eu-west-1", "eu-central-1"]


def _load(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    assert not matches, [str(m) for m in matches]
    assert isinstance(template, dict)
    return template


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return _load(PIPELINE)


# The rejects path's resources (a second stream, role, log group and table) are named
# Rejected*; the helpers below find the events path's, and tests at the end check those.
REJECTED = "Rejected"


def _resources_of_type(template: dict[str, Any], type_name: str) -> list[dict[str, Any]]:
    return [
        r
        for k, r in template["Resources"].items()
        if r["Type"] == type_name and not k.startswith(REJECTED)
    ]


def _one(template: dict[str, Any], type_name: str) -> dict[str, Any]:
    found = _resources_of_type(template, type_name)
    assert len(found) == 1, f"expected exactly one {type_name}, found {len(found)}"
    return found[0]


def _logical_id(template: dict[str, Any], type_name: str) -> str:
    ids = [
        str(k)
        for k, r in template["Resources"].items()
        if r["Type"] == type_name and not k.startswith(REJECTED)
    ]
    assert len(ids) == 1
    return ids[0]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _documented_deploys() -> list[tuple[str, Path, dict[str, str]]]:
    """Every ``aws cloudformation deploy`` in the docs: the doc, the template it deploys and
    its ``--parameter-overrides``."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8").replace("\\\n", " ")
        for command in re.findall(r"^aws cloudformation deploy .*$", text, flags=re.MULTILINE):
            args = shlex.split(command, comments=True)
            template = ROOT / args[args.index("--template-file") + 1]
            overrides: dict[str, str] = {}
            if "--parameter-overrides" in args:
                for arg in args[args.index("--parameter-overrides") + 1 :]:
                    if arg.startswith("--"):
                        break
                    name, _, value = arg.partition("=")
                    overrides[name] = value
            found.append((doc.name, template, overrides))
    return found


def _accepts(parameter: dict[str, Any], value: str) -> bool:
    """Would CloudFormation take ``value`` for this parameter (its type and constraints)?"""
    if "AllowedValues" in parameter:
        return value in [str(allowed) for allowed in parameter["AllowedValues"]]
    if parameter["Type"] == "Number":
        number = float(value)
        low, high = parameter.get("MinValue", number), parameter.get("MaxValue", number)
        return bool(low <= number <= high)
    return re.fullmatch(parameter.get("AllowedPattern", ".*"), value) is not None


def test_the_docs_deploy_the_template_with_parameters_it_takes() -> None:
    """Each deploy command in the docs names a template here and only parameters it declares,
    with values it accepts; SETUP.md's parameter table states the template's defaults; and
    ATHENA.md lists the stack's outputs as the template declares them."""
    assert PIPELINE in TEMPLATES
    deploys = _documented_deploys()
    assert {doc for doc, _, _ in deploys} >= {"SETUP.md", "ATHENA.md"}, deploys
    for doc, template, overrides in deploys:
        assert template in TEMPLATES, f"{doc} deploys {template}, not a template here"
        parameters = _load(template)["Parameters"]
        for name, value in overrides.items():
            assert name in parameters, f"{doc}: {template.name} has no parameter {name}"
            assert _accepts(parameters[name], value), f"{doc}: {name}={value} is refused"
    parameters = _load(PIPELINE)["Parameters"]
    setup = (ROOT / "docs" / "SETUP.md").read_text(encoding="utf-8")
    table = setup.split("| Parameter | Default | Meaning |", 1)[1].split("\n\n", 1)[0]
    stated: dict[str, str] = {}
    for row in table.splitlines()[2:]:
        names_cell, defaults_cell = row.split(" | ")[:2]
        names = re.findall(r"`(\w+)`", names_cell)
        defaults = re.findall(r"`([^`]+)`", defaults_cell)
        assert len(names) == len(defaults), row
        stated.update(zip(names, defaults, strict=True))
    assert len(stated) >= 10, stated
    assert stated == {name: str(parameters[name]["Default"]) for name in stated}
    athena = (ROOT / "docs" / "ATHENA.md").read_text(encoding="utf-8")
    listing = athena.split("--query 'Stacks[0].Outputs'", 1)[1].split("```", 1)[0]
    outputs = re.findall(r"\w+", " ".join(re.findall(r"#(.*)", listing)))
    assert outputs == list(_load(PIPELINE)["Outputs"])


@pytest.fixture(scope="module")
def cfn_lint_findings() -> dict[str, list[str]]:
    """One cfn-lint run over every template, as a person or CI runs it: its findings by file."""
    exe = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cfnlint"]
    proc = subprocess.run(
        [*cmd, "--format", "json", "--regions", *LINT_REGIONS, "--", *map(str, TEMPLATES)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    findings: dict[str, list[str]] = {str(path): [] for path in TEMPLATES}
    for match in json.loads(proc.stdout or "[]"):
        line = match["Location"]["Start"]["LineNumber"]
        findings.setdefault(match["Filename"], []).append(
            f"{match['Level']} {match['Rule']['Id']} line {line}: {match['Message']}"
        )
    # Exit code 0 means no errors, no warnings and no informational findings.
    assert proc.returncode == 0 or any(findings.values()), proc.stdout + proc.stderr
    return findings


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_clean(path: Path, cfn_lint_findings: dict[str, list[str]]) -> None:
    assert cfn_lint_findings[str(path)] == []


def test_bucket_encrypted_and_private(pipeline: dict[str, Any]) -> None:
    bucket = _one(pipeline, "AWS::S3::Bucket")
    props = bucket["Properties"]
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    block = props["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["DeletionPolicy"] == "Retain"


def test_bucket_policy_denies_plain_http(pipeline: dict[str, Any]) -> None:
    bucket_id = _logical_id(pipeline, "AWS::S3::Bucket")
    policy = _one(pipeline, "AWS::S3::BucketPolicy")["Properties"]
    assert policy["Bucket"] == {"Ref": bucket_id}
    denies = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
    ]
    assert len(denies) == 1
    deny = denies[0]
    assert deny["Principal"] == "*"
    assert deny["Action"] in ("s3:*", ["s3:*"])
    resources = _as_list(deny["Resource"])
    assert {"Fn::GetAtt": [bucket_id, "Arn"]} in resources
    assert {"Fn::Sub": "${" + bucket_id + ".Arn}/*"} in resources


def _lifecycle_rule(pipeline: dict[str, Any], prefix: str) -> dict[str, Any]:
    bucket = _one(pipeline, "AWS::S3::Bucket")
    rules = [
        r
        for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        if r.get("Prefix") == prefix and r["Status"] == "Enabled"
    ]
    assert len(rules) == 1, f"one enabled lifecycle rule for {prefix}"
    rule: dict[str, Any] = rules[0]
    return rule


def test_lifecycle_rules_are_parameters(pipeline: dict[str, Any]) -> None:
    raw = _lifecycle_rule(pipeline, "raw/")
    transition = raw["Transitions"][0]
    assert transition["TransitionInDays"] == {"Ref": "RawTransitionDays"}
    assert transition["StorageClass"] == {"Ref": "RawTransitionStorageClass"}
    assert raw["ExpirationInDays"] == {"Ref": "RawExpirationDays"}
    errors = _lifecycle_rule(pipeline, "errors/")
    assert errors["ExpirationInDays"] == {"Ref": "ErrorsExpirationDays"}
    params = pipeline["Parameters"]
    # S3 refuses IA transitions earlier than 30 days; the default must deploy.
    assert params["RawTransitionDays"]["MinValue"] >= 30
    assert params["RawExpirationDays"]["Default"] > params["RawTransitionDays"]["Default"]


def test_every_prefix_holding_events_expires(pipeline: dict[str, Any]) -> None:
    """Retention covers every copy: csv/ and rejected/ too, each its own parameter; csv/
    and erasure/ rules exist unless their parameter is 0 (keep forever)."""
    bucket = _one(pipeline, "AWS::S3::Bucket")
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    params = pipeline["Parameters"]
    conditions = pipeline["Conditions"]
    expected = {
        "raw/": "RawExpirationDays",
        "errors/": "ErrorsExpirationDays",
        "csv/": "CsvExpirationDays",
        "rejected/": "RejectedExpirationDays",
        "replayed/": "RejectedExpirationDays",
        "erasure/": "ErasureAuditExpirationDays",
        "parquet/": "ParquetExpirationDays",
    }
    found = {}
    for rule in rules:
        if "Fn::If" in rule:
            condition, rule, otherwise = rule["Fn::If"]
            parameter = rule["ExpirationInDays"]["Ref"]
            assert otherwise == {"Ref": "AWS::NoValue"}
            assert conditions[condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, "0"]}]}
            assert params[parameter]["MinValue"] == 0
        if rule.get("Prefix") and "ExpirationInDays" in rule:
            assert rule["Status"] == "Enabled"
            found[rule["Prefix"]] = rule["ExpirationInDays"]
    assert found == {prefix: {"Ref": name} for prefix, name in expected.items()} | {
        "athena-results/": {"Ref": "AthenaResultsExpirationDays"}
    }
    # CSVs and the Parquet copy hold raw's events: by default they go when raw/ does.
    assert params["CsvExpirationDays"]["Default"] == params["RawExpirationDays"]["Default"]
    assert params["ParquetExpirationDays"]["Default"] == params["RawExpirationDays"]["Default"]
    [versions] = [r for r in rules if "NoncurrentVersionExpiration" in r]
    assert "Prefix" not in versions and "Filter" not in versions
    assert versions["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionExpirationDays"}
    }


def test_firehose_destination(pipeline: dict[str, Any]) -> None:
    bucket_id = _logical_id(pipeline, "AWS::S3::Bucket")
    stream = _one(pipeline, "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    assert stream["DeliveryStreamType"] == "DirectPut"
    dest = stream["ExtendedS3DestinationConfiguration"]
    assert dest["BucketARN"] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert dest["CompressionFormat"] == "GZIP"
    # No expression in Prefix: Firehose appends its default yyyy/MM/dd/HH/ layout.
    assert dest["Prefix"] == "raw/"
    assert "!{" not in dest["Prefix"]
    error_prefix = dest["ErrorOutputPrefix"]
    assert isinstance(error_prefix, str)
    assert error_prefix.startswith("errors/firehose/")
    # Firehose rule: an ErrorOutputPrefix with expressions must name the error type.
    if "!{" in error_prefix:
        assert "!{firehose:error-output-type}" in error_prefix
    hints = dest["BufferingHints"]
    assert hints == {
        "SizeInMBs": {"Ref": "BufferSizeMB"},
        "IntervalInSeconds": {"Ref": "BufferIntervalSeconds"},
    }
    params = pipeline["Parameters"]
    assert params["BufferSizeMB"]["MinValue"] >= 1
    assert params["BufferSizeMB"]["MaxValue"] <= 128
    assert params["BufferIntervalSeconds"]["MaxValue"] <= 900


def test_delivery_role_scoped_to_bucket(pipeline: dict[str, Any]) -> None:
    bucket_id = _logical_id(pipeline, "AWS::S3::Bucket")
    role_id = _logical_id(pipeline, "AWS::IAM::Role")
    stream = _one(pipeline, "AWS::KinesisFirehose::DeliveryStream")["Properties"]
    assert stream["ExtendedS3DestinationConfiguration"]["RoleARN"] == {
        "Fn::GetAtt": [role_id, "Arn"]
    }
    role = pipeline["Resources"][role_id]["Properties"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "firehose.amazonaws.com"}]
    assert "ManagedPolicyArns" not in role
    bucket = {"Fn::GetAtt": [bucket_id, "Arn"]}
    # Object rights only under the prefixes the stream writes, never the whole bucket.
    prefixes = [
        {"Fn::Sub": "${" + bucket_id + ".Arn}/" + p} for p in ("raw/*", "errors/firehose/*")
    ]
    object_actions: set[str] = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = _as_list(statement["Action"])
            assert all("*" not in a for a in actions), actions
            resources = _as_list(statement["Resource"])
            if any(a.startswith("s3:") for a in actions):
                assert all(a.startswith("s3:") for a in actions)
                if resources == [bucket]:
                    assert set(actions) <= {
                        "s3:GetBucketLocation",
                        "s3:ListBucket",
                        "s3:ListBucketMultipartUploads",
                    }
                else:
                    assert resources == prefixes, resources
                    object_actions.update(actions)
            else:
                assert actions == ["logs:PutLogEvents"]
                assert len(resources) == 1
                sub = resources[0]["Fn::Sub"]
                assert ":log-stream:" in sub and not sub.endswith("*")
    assert object_actions == {"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"}
    error_prefix = stream["ExtendedS3DestinationConfiguration"]["ErrorOutputPrefix"]
    assert error_prefix.startswith("errors/firehose/")


def test_glue_table_partition_projection(pipeline: dict[str, Any]) -> None:
    bucket_id = _logical_id(pipeline, "AWS::S3::Bucket")
    table = pipeline["Resources"]["GlueEventsTable"]["Properties"]["TableInput"]
    keys = [k["Name"] for k in table["PartitionKeys"]]
    assert keys == ["year", "month", "day", "hour"]
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    for key in keys:
        assert params[f"projection.{key}.type"] in {"integer", "date"}
    for key in ("month", "day", "hour"):
        assert params[f"projection.{key}.digits"] == "2"
    template = params["storage.location.template"]["Fn::Sub"]
    assert template == "s3://${" + bucket_id + "}/raw/${!year}/${!month}/${!day}/${!hour}/"
    storage = table["StorageDescriptor"]
    assert storage["Location"] == {"Fn::Sub": "s3://${" + bucket_id + "}/raw/"}


def test_glue_table_is_one_line_column(pipeline: dict[str, Any]) -> None:
    # The Athena queries (chalicelib.athena) parse each raw line themselves, so a new
    # top-level field needs no column here; the table is the line, whole.
    from chalicelib.athena import LINE_COLUMN

    table = pipeline["Resources"]["GlueEventsTable"]["Properties"]["TableInput"]
    storage = table["StorageDescriptor"]
    assert storage["Columns"] == [
        {"Name": LINE_COLUMN, "Type": "string", "Comment": storage["Columns"][0]["Comment"]}
    ]
    serde = storage["SerdeInfo"]
    assert serde["SerializationLibrary"] == "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"
    # The default field delimiter (\x01) cannot occur in a JSON line: nothing splits it.
    assert "field.delim" not in serde.get("Parameters", {})
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"


def test_athena_workgroup_results_in_bucket(pipeline: dict[str, Any]) -> None:
    bucket_id = _logical_id(pipeline, "AWS::S3::Bucket")
    wg = _one(pipeline, "AWS::Athena::WorkGroup")["Properties"]["WorkGroupConfiguration"]
    assert wg["ResultConfiguration"]["OutputLocation"] == {
        "Fn::Sub": "s3://${" + bucket_id + "}/athena-results/"
    }
    assert wg["EnforceWorkGroupConfiguration"] is True
    assert _lifecycle_rule(pipeline, "athena-results/")["ExpirationInDays"]


def test_events_daily_table_is_the_parquet_copys_schema(pipeline: dict[str, Any]) -> None:
    """The columns the UNLOAD writes (chalicelib/athena/parquet.py), typed, then the two
    maps; one partition per day by projection, where the daily build writes it."""
    from chalicelib.athena.parquet import (
        ATTRIBUTES_COLUMN,
        CONTEXT_COLUMN,
        PARQUET_COMPRESSION,
        TYPED_COLUMNS,
    )
    from chalicelib.config import DailyBuild

    bucket_id = _logical_id(pipeline, "AWS::S3::Bucket")
    table = pipeline["Resources"]["GlueEventsDailyTable"]["Properties"]["TableInput"]
    assert table["Name"] == {"Ref": "ParquetTableName"}
    assert pipeline["Parameters"]["ParquetTableName"]["Default"] == "events_daily"
    hive = {"varchar": "string"}
    expected = [(name.lower(), hive.get(kind, kind)) for name, kind in TYPED_COLUMNS]
    expected += [(ATTRIBUTES_COLUMN, "map<string,string>"), (CONTEXT_COLUMN, "map<string,string>")]
    columns = table["StorageDescriptor"]["Columns"]
    assert [(c["Name"], c["Type"]) for c in columns] == expected
    params = table["Parameters"]
    assert params["parquet.compression"] == PARQUET_COMPRESSION
    assert table["PartitionKeys"][0]["Name"] == "dt"
    assert params["projection.dt.type"] == "date"
    assert params["projection.dt.format"] == "yyyy-MM-dd"
    prefix = DailyBuild().parquet_prefix
    assert params["storage.location.template"] == {
        "Fn::Sub": "s3://${" + bucket_id + "}/" + prefix + "dt=${!dt}/"
    }
    serde = table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    assert serde == "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    assert pipeline["Outputs"]["ParquetTable"]["Value"] == {"Ref": "GlueEventsDailyTable"}


def test_outputs(pipeline: dict[str, Any]) -> None:
    outputs = pipeline["Outputs"]
    for name in ("StreamName", "StreamArn", "BucketName", "GlueDatabase", "GlueTable"):
        assert name in outputs, name
    stream_id = _logical_id(pipeline, "AWS::KinesisFirehose::DeliveryStream")
    assert outputs["StreamArn"]["Value"] == {"Fn::GetAtt": [stream_id, "Arn"]}


# --------------------------------------------------------------------------------------
# The rejects path: a second stream under rejected/, its own role, a table over it
# --------------------------------------------------------------------------------------


def test_rejects_stream_lands_gzip_under_rejected(pipeline: dict[str, Any]) -> None:
    resources = pipeline["Resources"]
    streams = _resources_of_type(pipeline, "AWS::KinesisFirehose::DeliveryStream")
    assert len(streams) == 1  # the events stream, besides RejectedDeliveryStream
    stream = resources["RejectedDeliveryStream"]["Properties"]
    assert stream["DeliveryStreamName"] == {"Ref": "RejectsStreamName"}
    assert stream["DeliveryStreamType"] == "DirectPut"
    dest = stream["ExtendedS3DestinationConfiguration"]
    assert dest["BucketARN"] == {"Fn::GetAtt": ["AnalyticsBucket", "Arn"]}
    assert dest["RoleARN"] == {"Fn::GetAtt": ["RejectedDeliveryRole", "Arn"]}
    assert dest["Prefix"] == "rejected/" and dest["CompressionFormat"] == "GZIP"
    assert dest["ErrorOutputPrefix"].startswith("errors/firehose-rejected/")
    assert "!{firehose:error-output-type}" in dest["ErrorOutputPrefix"]
    interval = pipeline["Parameters"]["RejectsBufferIntervalSeconds"]
    assert interval["Default"] == interval["MaxValue"] == 900
    outputs = pipeline["Outputs"]
    assert outputs["RejectsStreamName"]["Value"] == {"Ref": "RejectedDeliveryStream"}
    assert outputs["RejectsStreamArn"]["Value"] == {"Fn::GetAtt": ["RejectedDeliveryStream", "Arn"]}
    assert outputs["RejectedTable"]["Value"] == {"Ref": "RejectedGlueTable"}
    assert _lifecycle_rule(pipeline, "rejected/")["ExpirationInDays"] == {
        "Ref": "RejectedExpirationDays"
    }
    assert _lifecycle_rule(pipeline, "replayed/")["ExpirationInDays"] == {
        "Ref": "RejectedExpirationDays"
    }


def test_rejects_role_writes_only_under_rejected(pipeline: dict[str, Any]) -> None:
    role = pipeline["Resources"]["RejectedDeliveryRole"]["Properties"]
    [statement_trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement_trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    [policy] = role["Policies"]
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert by_sid["FindTheBucket"]["Resource"] == {"Fn::GetAtt": ["AnalyticsBucket", "Arn"]}
    assert "s3:PutObject" not in by_sid["FindTheBucket"]["Action"]
    assert by_sid["WriteRejectsOnly"]["Resource"] == [
        {"Fn::Sub": "${AnalyticsBucket.Arn}/rejected/*"},
        {"Fn::Sub": "${AnalyticsBucket.Arn}/errors/firehose-rejected/*"},
    ]
    assert by_sid["LogDeliveryErrors"]["Action"] == ["logs:PutLogEvents"]


def test_rejected_table_projects_the_rejected_layout(pipeline: dict[str, Any]) -> None:
    table = pipeline["Resources"]["RejectedGlueTable"]["Properties"]["TableInput"]
    assert table["Name"] == {"Ref": "RejectedTableName"}
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month", "day", "hour"]
    events_table = pipeline["Resources"]["GlueEventsTable"]["Properties"]["TableInput"]
    projection = {k: v for k, v in table["Parameters"].items() if k.startswith("projection.")}
    assert projection == {
        k: v for k, v in events_table["Parameters"].items() if k.startswith("projection.")
    }
    template = table["Parameters"]["storage.location.template"]["Fn::Sub"]
    assert template == "s3://${AnalyticsBucket}/rejected/${!year}/${!month}/${!day}/${!hour}/"
    storage = table["StorageDescriptor"]
    columns = [c["Name"] for c in storage["Columns"]]
    serde = storage["SerdeInfo"]["Parameters"]
    # Every field of both record kinds (rejects/record.py) is a column, mapped when camelCase.
    from chalicelib.rejects.summary import CSV_COLUMNS

    fields = [f for f in CSV_COLUMNS if f != "metricName"] + ["eventText"]
    assert sorted(columns) == sorted(f.lower() for f in fields)
    for field in fields:
        if field != field.lower():
            assert serde[f"mapping.{field.lower()}"] == field


def test_athena_md_ddl_declares_the_template_columns(pipeline: dict[str, Any]) -> None:
    import re

    doc = (ROOT / "docs" / "ATHENA.md").read_text(encoding="utf-8")
    ddl = doc.split("CREATE EXTERNAL TABLE IF NOT EXISTS owned_analytics.rejected", 1)[1]
    columns_text = ddl.split("PARTITIONED BY", 1)[0]
    documented = re.findall(r"`(\w+)` (\w+)", columns_text)
    table = pipeline["Resources"]["RejectedGlueTable"]["Properties"]["TableInput"]
    declared = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert documented == declared
    for key, value in table["StorageDescriptor"]["SerdeInfo"]["Parameters"].items():
        assert f"'{key}' = '{value}'" in ddl, key
