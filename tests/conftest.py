"""Shared fixtures. Settings are read when ``app`` is imported, so the
environment is prepared here, before any test module imports it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing in the standard credential chain: no keys, no profile, no metadata service."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask a metadata service


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


@pytest.fixture
def standin(moto_endpoint: str, s3: Any, bucket: str, tmp_path: Path) -> Any:
    """Athena without AWS (tests/athena_standin.py), its workgroup writing results to
    ``s3://<bucket>/athena-results/`` as the stack's does."""
    from tests.athena_standin import AthenaStandIn

    athena = aws_client("athena", moto_endpoint)
    names = [group["Name"] for group in athena.list_work_groups()["WorkGroups"]]
    if "owned-analytics" not in names:
        athena.create_work_group(
            Name="owned-analytics",
            Configuration={
                "ResultConfiguration": {"OutputLocation": f"s3://{bucket}/athena-results/"}
            },
        )
    return AthenaStandIn(athena, s3, bucket, tmp_path / "athena")


def route_to(monkeypatch: pytest.MonkeyPatch, sink: Any, **options: Any) -> None:
    """Make the app's POST /events store into ``sink`` (a MemorySink, a local sink…)."""
    import app as app_module
    from chalicelib.ingest.collect import Collector
    from chalicelib.ingest.validate import BatchValidator

    collector = Collector(
        BatchValidator(app_module.SETTINGS.limits), lambda: sink, app_module.app.log, **options
    )
    monkeypatch.setattr(app_module, "collector", collector)


def python_output(code: str) -> str:
    """What ``python -c code`` prints, run from the repository root in a fresh interpreter
    (to see what an import loads, which this process has long since loaded)."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chalice_bin() -> str:
    beside = Path(sys.executable).parent / "chalice"
    return str(beside if beside.exists() else REPO_ROOT / ".venv" / "bin" / "chalice")


@pytest.fixture(scope="session")
def chalice_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`chalice local --stage dev` on a free loopback port, writing under a temp dir."""
    data_dir = tmp_path_factory.mktemp("smoke-data")
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        # The test session's own settings must not leak into the server.
        if key not in ("ANALYTICS_BUCKET", "ANALYTICS_STAGE", "ANALYTICS_SINK", "ALLOWED_ORIGINS")
    }
    env.update(ANALYTICS_DATA_DIR=str(data_dir), AWS_EC2_METADATA_DISABLED="true")
    log = (data_dir.parent / f"chalice-local-{port}.log").open("wb")
    process = subprocess.Popen(
        [
            _chalice_bin(),
            "local",
            "--no-autoreload",
            "--stage",
            "dev",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.flush()
                output = Path(log.name).read_text(errors="replace")
                pytest.fail(f"chalice local exited with {process.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(base + "health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chalice local did not answer /health within 30 s")
            time.sleep(0.2)
        yield base, data_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
