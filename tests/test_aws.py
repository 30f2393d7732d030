"""chalicelib.aws: the one client factory and the one AWS-error-to-message translator."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from chalicelib.aws import CREDENTIALS_HINT, describe_aws_error, make_client
from tests.conftest import REPO_ROOT, free_port, python_output


def client_error(code: str, message: str = "", **extra: str) -> ClientError:
    error: Any = {"Code": code, "Message": message, **extra}
    return ClientError({"Error": error}, "SomeOperation")


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (NoCredentialsError(), f"no AWS credentials found: {CREDENTIALS_HINT}"),
        (
            PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
            "unusable AWS credentials (Partial credentials found in env, missing: "
            f"AWS_SECRET_ACCESS_KEY): {CREDENTIALS_HINT}",
        ),
        (
            ProfileNotFound(profile="nope"),
            f"unusable AWS credentials (The config profile (nope) could not be found): "
            f"{CREDENTIALS_HINT}",
        ),
        (
            CredentialRetrievalError(provider="sso", error_msg="Token expired"),
            "unusable AWS credentials (Error when retrieving credentials from sso: "
            f"Token expired): {CREDENTIALS_HINT}",
        ),
        (NoRegionError(), "no AWS region: pass --region or set AWS_DEFAULT_REGION"),
        (
            client_error("NoSuchBucket", "The specified bucket does not exist", BucketName="b-1"),
            "bucket b-1 does not exist",
        ),
        (
            client_error("NoSuchBucket", "The specified bucket does not exist"),
            "S3: The specified bucket does not exist",
        ),
        (
            client_error("AccessDenied", "Access Denied"),
            "S3 refused the call (AccessDenied): Access Denied; "
            "the credentials in use lack a permission",
        ),
        (
            client_error("AccessDeniedException", "not authorized to perform apigateway:PATCH"),
            "S3 refused the call (AccessDeniedException): not authorized to perform "
            "apigateway:PATCH; the credentials in use lack a permission",
        ),
        (
            client_error("403", "Forbidden"),
            "S3 refused the call (403): Forbidden; the credentials in use lack a permission",
        ),
        *(
            (
                client_error(code, "The security token included in the request is invalid."),
                f"S3 rejected the AWS credentials ({code}): {CREDENTIALS_HINT}",
            )
            for code in (
                "UnrecognizedClientException",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "InvalidClientTokenId",
                "ExpiredToken",
            )
        ),
        (
            client_error("NoSuchKey", "The specified key\n  does not exist."),
            "S3 error NoSuchKey: The specified key does not exist.",
        ),
        (
            ClientError({}, "SomeOperation"),  # an answer without an Error element
            "S3 error (no code): An error occurred (Unknown) when calling the SomeOperation "
            "operation: Unknown",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"),
            'could not reach S3: Could not connect to the endpoint URL: "http://127.0.0.1:9/"',
        ),
        (
            ConnectTimeoutError(endpoint_url="http://x/"),
            'could not reach S3: Connect timeout on endpoint URL: "http://x/"',
        ),
        (
            ReadTimeoutError(endpoint_url="http://x/"),
            'could not reach S3: Read timeout on endpoint URL: "http://x/"',
        ),
        (
            ParamValidationError(report='Invalid bucket name "a b"'),
            'S3 call failed: Parameter validation failed: Invalid bucket name "a b"',
        ),
        (ValueError("not AWS"), None),
        (OSError("disk full"), None),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_describe_aws_error(exc: BaseException, message: str | None) -> None:
    assert describe_aws_error(exc, "S3") == message


def test_credentials_message_is_written_once() -> None:
    """The credential-chain advice lives in chalicelib/aws.py and nowhere else."""
    sources = [
        REPO_ROOT / "app.py",
        REPO_ROOT / "clitools.py",
        *(REPO_ROOT / "chalicelib").rglob("*.py"),
        *(REPO_ROOT / "exporter").rglob("*.py"),
        *(REPO_ROOT / "deploy").rglob("*.py"),
    ]
    holding = [
        path.relative_to(REPO_ROOT).as_posix()
        for path in sources
        if "AWS_SECRET_ACCESS_KEY" in path.read_text(encoding="utf-8")
    ]
    assert holding == ["chalicelib/aws.py"]


def test_make_client_talks_to_the_given_endpoint(moto_endpoint: str) -> None:
    client = make_client("s3", region="eu-west-1", endpoint_url=moto_endpoint)
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.endpoint_url == moto_endpoint
    assert "Buckets" in client.list_buckets()


def test_make_client_defaults_come_from_the_standard_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    client = make_client("firehose")
    # Read when the client is made, not when the process started.
    assert client.meta.region_name == "ap-southeast-2"
    assert client.meta.endpoint_url == "https://firehose.ap-southeast-2.amazonaws.com"


def test_make_client_passes_the_config() -> None:
    client = make_client("firehose", region="us-east-1", config=Config(connect_timeout=2))
    assert client.meta.config.connect_timeout == 2


@pytest.mark.usefixtures("no_aws_credentials")
def test_make_client_without_credentials_fails_on_the_first_call() -> None:
    client = make_client("s3", region="us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NoCredentialsError) as caught:
        client.list_buckets()
    assert describe_aws_error(caught.value, "S3") == (
        f"no AWS credentials found: {CREDENTIALS_HINT}"
    )


def test_importing_it_needs_neither_click_nor_boto3() -> None:
    """It ships in the Lambda zip (no click there) and costs no boto3 import until used."""
    code = (
        "import sys, chalicelib.aws; "
        "print(sorted(m for m in ('click', 'boto3') if m in sys.modules))"
    )
    assert python_output(code) == "[]"
