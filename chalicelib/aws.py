"""Make boto3 clients, and say in one actionable line what an AWS error means.

The one client factory and the one error translator of the project: ``app.py``, the
``python -m exporter`` data commands and the ``python -m deploy`` commands all use
them. No click here: this package ships in the Lambda zip, and click does not.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config

CREDENTIALS_HINT = (
    "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (the standard credential chain)"
)
# Error codes meaning "these credentials are not valid", as opposed to "not allowed".
BAD_CREDENTIALS_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403", "Forbidden"})


def make_client(
    service: str,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> Any:
    """A boto3 client from a fresh session, so credentials and region are resolved now.

    ``region`` and ``endpoint_url`` default to the standard chain (``AWS_DEFAULT_REGION``,
    ``AWS_ENDPOINT_URL``, the config file). Callers annotate the result with the
    ``mypy_boto3_*`` client type they expect.
    """
    import boto3  # here, so importing this module costs nothing on paths without AWS

    session: Any = boto3.session.Session(region_name=region)
    return session.client(service, endpoint_url=endpoint_url, config=config)


def _collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def describe_aws_error(exc: BaseException, service: str) -> str | None:
    """What went wrong calling ``service`` (e.g. "S3"), as one line; None if not an AWS error."""
    # Not imported here: a process that never loaded botocore (a local export) cannot
    # have raised its errors, and importing it costs a tenth of a second.
    boto_errors = sys.modules.get("botocore.exceptions")
    if boto_errors is None:
        return None
    if isinstance(exc, boto_errors.NoCredentialsError):
        return f"no AWS credentials found: {CREDENTIALS_HINT}"
    # Credentials that were found but cannot be used (half a key, a missing profile, SSO).
    if isinstance(
        exc,
        (
            boto_errors.PartialCredentialsError,
            boto_errors.CredentialRetrievalError,
            boto_errors.ProfileNotFound,
        ),
    ):
        return f"unusable AWS credentials ({_collapse_whitespace(str(exc))}): {CREDENTIALS_HINT}"
    if isinstance(exc, boto_errors.NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION"
    if isinstance(exc, boto_errors.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "")) or "(no code)"
        message = _collapse_whitespace(str(error.get("Message") or exc))
        if code == "NoSuchBucket":
            bucket = error.get("BucketName")
            return f"bucket {bucket} does not exist" if bucket else f"{service}: {message}"
        if code in BAD_CREDENTIALS_CODES:
            return f"{service} rejected the AWS credentials ({code}): {CREDENTIALS_HINT}"
        if code in ACCESS_DENIED_CODES:
            return (
                f"{service} refused the call ({code}): {message}; "
                "the credentials in use lack a permission"
            )
        return f"{service} error {code}: {message}"
    # The request never got an answer (DNS, refused, TLS, timeouts).
    if isinstance(exc, (boto_errors.ConnectionError, boto_errors.HTTPClientError)):
        return f"could not reach {service}: {_collapse_whitespace(str(exc))}"
    if isinstance(exc, boto_errors.BotoCoreError):
        return f"{service} call failed: {_collapse_whitespace(str(exc))}"
    return None
