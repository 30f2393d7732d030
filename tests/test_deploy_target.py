"""deploy.target.resolve_target: the prod target from configure-prod's values or from a
stack's outputs, and the clear refusal when they are missing or disagree."""

from __future__ import annotations

import pytest

from deploy.target import (
    GivenTarget,
    MissingTargetValues,
    ProdTarget,
    StackOutputs,
    resolve_target,
)

ORIGINS = ("https://a.example.com",)
STREAM_ARN = "arn:aws:firehose:eu-west-1:210987654321:deliverystream/my-events"
REJECTS_ARN = "arn:aws:firehose:eu-west-1:210987654321:deliverystream/my-rejects"
FULL = {
    "StreamName": "my-events",
    "StreamArn": STREAM_ARN,
    "RejectsStreamArn": REJECTS_ARN,
    "BucketName": "stack-bucket",
}
OLD = {"StreamArn": STREAM_ARN, "BucketName": "old-bucket"}  # made before the rejects stream
ATHENA = {"AthenaWorkGroup": "wg", "GlueDatabase": "db", "GlueTable": "t", "ParquetTable": "p"}
EXPLICIT = GivenTarget("s", None, "my-bucket", "us-east-1", "123456789012")


def from_stack(bucket: str, rejects: str = "my-rejects", **names: str) -> ProdTarget:
    return ProdTarget("my-events", bucket, "eu-west-1", "210987654321", ORIGINS, rejects, **names)


# (what the command line gives, the stack's outputs or None, the target resolved)
RESOLVED = [
    (EXPLICIT, None, ProdTarget("s", "my-bucket", "us-east-1", "123456789012", ORIGINS)),
    (
        GivenTarget("s", "r", "my-bucket", "cn-north-1", "123456789012"),
        None,
        ProdTarget("s", "my-bucket", "cn-north-1", "123456789012", ORIGINS, "r"),
    ),
    (GivenTarget(), FULL, from_stack("stack-bucket")),
    (GivenTarget(region="eu-west-1"), FULL, from_stack("stack-bucket")),
    # Values that agree with the stack are fine.
    (
        GivenTarget("my-events", "my-rejects", "stack-bucket", "eu-west-1", "210987654321"),
        FULL,
        from_stack("stack-bucket"),
    ),
    (GivenTarget(), OLD, from_stack("old-bucket", rejects="")),
    # A rejects stream made outside an older stack is taken.
    (GivenTarget(rejects_stream_name="my-rejects"), OLD, from_stack("old-bucket")),
    # The stack's Athena workgroup and Glue tables, when it names them.
    (
        GivenTarget(),
        {**FULL, **ATHENA},
        from_stack("stack-bucket", workgroup="wg", database="db", table="t", parquet_table="p"),
    ),
]


@pytest.mark.parametrize(("given", "outputs", "target"), RESOLVED)
def test_resolve_target(
    given: GivenTarget, outputs: dict[str, str] | None, target: ProdTarget
) -> None:
    stack = None if outputs is None else StackOutputs("analytics", outputs)
    assert resolve_target(given, ORIGINS, stack) == target


# (what the command line gives, the stack's outputs or None, the refusal, word for word)
REFUSED = [
    (GivenTarget(), None, "missing --stream-name, --bucket, --region, --account-id"),
    (GivenTarget(stream_name="s", region="us-east-1"), None, "missing --bucket, --account-id"),
    (GivenTarget(bucket="other"), FULL, "--bucket other but stack analytics says stack-bucket"),
    (GivenTarget(stream_name="x"), FULL, "--stream-name x but stack analytics says my-events"),
    (
        GivenTarget(rejects_stream_name="zzz"),
        FULL,
        "--rejects-stream-name zzz but stack analytics says my-rejects",
    ),
    (
        GivenTarget(account_id="123456789012"),
        FULL,
        "--account-id 123456789012 but stack analytics says 210987654321",
    ),
    (
        GivenTarget(region="us-east-1"),
        FULL,
        "stack analytics: --region us-east-1 but the stream is in eu-west-1",
    ),
    (
        GivenTarget(),
        {"StreamArn": STREAM_ARN},
        "stack analytics: the stack has no output BucketName: is it infrastructure/pipeline.yaml?",
    ),
    (
        GivenTarget(),
        {**OLD, "StreamArn": "nope"},
        "stack analytics: StreamArn output 'nope' is not a Firehose stream ARN",
    ),
]


@pytest.mark.parametrize(("given", "outputs", "message"), REFUSED)
def test_resolve_target_refuses(
    given: GivenTarget, outputs: dict[str, str] | None, message: str
) -> None:
    stack = None if outputs is None else StackOutputs("analytics", outputs)
    with pytest.raises(ValueError) as refused:
        resolve_target(given, ORIGINS, stack)
    # Only values missing without a stack are a usage error (configure-prod exits 2).
    assert isinstance(refused.value, MissingTargetValues) == (outputs is None)
    if outputs is None:
        message += " (or pass --from-stack STACK)"
    assert str(refused.value) == message
