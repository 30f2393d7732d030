"""Shared fixtures. Settings are read when ``app`` is imported, so the
environment is prepared here, before any test module imports it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

_DATA_DIR = tempfile.mkdtemp(prefix="analytics-test-")
TEST_BUCKET = "analytics-test-bucket"
os.environ.update(
    {
        "ANALYTICS_STAGE": "dev",
        "ANALYTICS_SINK": "local",
        "ANALYTICS_DATA_DIR": _DATA_DIR,
        # A bucket makes app.py register the S3 and schedule handlers.
        "ANALYTICS_BUCKET": TEST_BUCKET,
        "ALLOWED_ORIGINS": "*",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(name, None)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real moto server on 127.0.0.1: boto3 talks HTTP to it like to AWS."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")  # type: ignore[call-overload]


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return aws_client("s3", moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    """An empty bucket per test (moto keeps state for the whole session)."""
    s3.create_bucket(Bucket=TEST_BUCKET)
    yield TEST_BUCKET
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=TEST_BUCKET):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=TEST_BUCKET, Key=item["Key"])
    s3.delete_bucket(Bucket=TEST_BUCKET)
