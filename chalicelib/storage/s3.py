"""A store in an S3 bucket: multipart uploads completed only when whole, conditional
writes, and every version of a key removed on delete (versioned buckets)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, BinaryIO

from chalicelib.storage.base import StoreError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef


class S3Store:
    """The layout in an S3 bucket: multipart outputs, conditional writes, versions removed."""

    def __init__(self, client: S3Client, bucket: str, part_bytes: int = 16 * 1024 * 1024) -> None:
        self._client = client
        self.bucket = bucket
        self._part_bytes = part_bytes
        self._versioning: str | None = None  # the bucket's versioning status, once asked

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def open_read(self, key: str) -> BinaryIO:
        response = self._client.get_object(Bucket=self.bucket, Key=key)
        # StreamingBody has read(n) but not readinto(); adapt it for buffered readers.
        return io.BufferedReader(_ReadableStream(response["Body"]), 1024 * 1024)

    @contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        writer = _MultipartWriter(self._client, self.bucket, key, self._part_bytes)
        try:
            yield writer  # type: ignore[misc]
            writer.complete()
        except BaseException:
            writer.abort()
            raise

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except self._client.exceptions.ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        if not self._versioned():
            self._client.delete_object(Bucket=self.bucket, Key=key)
            return
        self.purge_old_versions(key)
        try:
            latest = self._client.head_object(Bucket=self.bucket, Key=key).get("VersionId")
        except self._client.exceptions.ClientError as exc:
            if _missing(exc):
                return
            raise
        # By version id: no delete marker is left behind.
        self._client.delete_object(Bucket=self.bucket, Key=key, VersionId=latest or "null")

    def purge_old_versions(self, key: str) -> int:
        if not self._versioned():
            return 0
        old: list[ObjectIdentifierTypeDef] = []
        paginator = self._client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
            # The prefix also lists longer keys: only this key's copies count. The
            # current object is the latest version; a latest delete marker means none.
            for version in page.get("Versions", []):
                if version["Key"] == key and not version.get("IsLatest"):
                    old.append({"Key": key, "VersionId": version["VersionId"]})
            for marker in page.get("DeleteMarkers", []):
                if marker["Key"] == key:
                    old.append({"Key": key, "VersionId": marker["VersionId"]})
        for start in range(0, len(old), 1000):
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": old[start : start + 1000], "Quiet": True}
            )
            if answer.get("Errors"):
                error = answer["Errors"][0]
                raise StoreError(
                    f"could not delete an old version of {self.describe(key)}: "
                    f"{error.get('Code')} {error.get('Message')}"
                )
        return len(old)

    # --- conditional writes (S3's If-None-Match / If-Match): what a lock object needs ---

    def create_exclusive(self, key: str, data: bytes) -> str | None:
        """Write ``key`` only if it does not exist; its ETag, or None when it existed."""
        try:
            answer = self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=_content_type(key),
                IfNoneMatch="*",
            )
        except self._client.exceptions.ClientError as exc:
            if _precondition(exc):
                return None
            raise
        return answer["ETag"]

    def replace_if(self, key: str, data: bytes, etag: str) -> str | None:
        """Overwrite ``key`` only if it still has ``etag``; the new ETag, or None."""
        try:
            answer = self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=_content_type(key), IfMatch=etag
            )
        except self._client.exceptions.ClientError as exc:
            if _precondition(exc) or _missing(exc):
                return None
            raise
        return answer["ETag"]

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The content of ``key`` and its ETag, or None when it does not exist."""
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=key)
        except self._client.exceptions.ClientError as exc:
            if _missing(exc):
                return None
            raise
        return answer["Body"].read(), answer["ETag"]

    def delete_if(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag``."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
        except self._client.exceptions.ClientError as exc:
            if _missing(exc) or _precondition(exc):
                return False
            raise
        return True

    def rewriting(self, key: str) -> AbstractContextManager[None]:
        return nullcontext()  # objects are written whole, never appended to

    def _versioned(self) -> bool:
        """Has versioning ever been on? A bucket that never had it has no old versions."""
        if self._versioning is None:
            answer = self._client.get_bucket_versioning(Bucket=self.bucket)
            self._versioning = answer.get("Status", "")
        return bool(self._versioning)


class _ReadableStream(io.RawIOBase):
    def __init__(self, body: object) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data: bytes = self._body.read(len(buffer))  # type: ignore[attr-defined]
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()  # type: ignore[attr-defined]
        super().close()


class _MultipartWriter(io.RawIOBase):
    """Streams a large output to S3 in parts, so no local copy of it is needed.

    Small outputs (under one part) go up with a single PutObject.
    """

    def __init__(self, client: S3Client, bucket: str, key: str, part_bytes: int) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._part_bytes = part_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buffer += data
        if len(self._buffer) >= self._part_bytes:
            self._flush_part()
        return len(data)

    def _flush_part(self) -> None:
        if self._upload_id is None:
            # One checksum algorithm named at creation and given for every part:
            # current SDKs add a CRC32 to each part, and S3 refuses a mix.
            created = self._client.create_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                ContentType=_content_type(self._key),
                ChecksumAlgorithm="CRC32",
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        answer = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=bytes(self._buffer),
            ChecksumAlgorithm="CRC32",
        )
        part: CompletedPartTypeDef = {"ETag": answer["ETag"], "PartNumber": number}
        if "ChecksumCRC32" in answer:
            part["ChecksumCRC32"] = answer["ChecksumCRC32"]
        self._parts.append(part)
        self._buffer.clear()

    def complete(self) -> None:
        if self._upload_id is None:
            self._client.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                ContentType=_content_type(self._key),
            )
            return
        if self._buffer:
            self._flush_part()
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _precondition(exc: ClientError) -> bool:
    """A conditional write lost: the condition failed (412), or another conditional write
    of the same key was in flight (409)."""
    code = exc.response.get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _content_type(key: str) -> str:
    if key.endswith(".csv"):
        return "text/csv; charset=utf-8"
    if key.endswith(".jsonl"):
        return "application/x-ndjson"
    return "application/octet-stream"
