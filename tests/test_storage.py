"""chalicelib/storage/: a folder and a bucket publish outputs whole, with the usual
modes, and to S3 in parts."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, day_before
from chalicelib.storage.local import LocalStore
from tests.test_handlers import put_raw, stored_line


def test_published_files_get_the_usual_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with LocalStore(tmp_path).open_write("csv/parts/a.csv") as handle:
            handle.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "csv/parts/a.csv").stat().st_mode) == 0o644


def test_large_output_streams_to_s3_in_parts(s3: Any, bucket: str) -> None:
    from chalicelib.storage.s3 import S3Store

    lines = [
        stored_line(eventId=f"e{i}", metricAttributes={"pad": "x" * 2000}) for i in range(4000)
    ]
    put_raw(s3, bucket, "raw/2026/11/26/10/big.gz", *lines)
    sent: dict[str, Any] = {}

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent[model.name] = params

    for operation in ("CreateMultipartUpload", "CompleteMultipartUpload"):
        s3.meta.events.register(f"provide-client-params.s3.{operation}", capture)
    store = S3Store(s3, bucket, part_bytes=5 * 1024 * 1024)
    report = build_daily_csv(store, day_before("2026-11-27T00:15:00Z"), Settings())
    assert report.rows == 4000
    # S3 refuses parts with checksums under an upload created without the algorithm.
    assert sent["CreateMultipartUpload"]["ChecksumAlgorithm"] == "CRC32"
    parts = sent["CompleteMultipartUpload"]["MultipartUpload"]["Parts"]
    assert len(parts) >= 2 and all(part.get("ChecksumCRC32") for part in parts)
    head = s3.head_object(Bucket=bucket, Key="csv/2026-11-26_combined.csv")
    assert head["ContentLength"] > 8 * 1024 * 1024
    assert "-" in head["ETag"]  # a multipart upload
