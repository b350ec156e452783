"""S3 multipart uploads through boto3: create, presigned UploadPart, list, complete, abort.

The API calls go to the endpoint functions use (``Runtime.s3``); part URLs are signed for the one
clients reach (``Runtime.s3_presigner``), as single PUTs are (``filepipe.storage``). A part URL is
SigV4 with ``Content-Length`` (when the part plan fixes it) and, when a digest is given,
``x-amz-checksum-sha256`` in ``X-Amz-SignedHeaders``: storage refuses a body of another length or
digest. The length is not among the headers handed to the client (a browser may not set it;
every client sends it). CompleteMultipartUpload sends ``If-None-Match: *``, so the object is
created once. Listings read every page.
Storage's refusals that a caller can act on become this module's errors; an outage stays
botocore's (an HTTP function answers 503).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from filepipe.errors import FilepipeError
from filepipe.storage import PresignedUpload, head_object, presign_body

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_GONE = frozenset({"NoSuchUpload", "PreconditionFailed"})
_REFUSED_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


class MultipartError(FilepipeError):
    """Storage refused a multipart operation."""


class UploadNotOpen(MultipartError):
    """The upload id names no open upload: it was completed or aborted (or never existed)."""


class PartsRefused(MultipartError):
    """CompleteMultipartUpload refused the listed parts (a part changed since it was listed)."""


@dataclass(frozen=True)
class StoredPart:
    """A part as ListParts reports it."""

    number: int
    etag: str
    size: int
    checksum_sha256: str | None = None
    """Its SHA-256 in base64, when storage reports one."""

    @property
    def sha256_hex(self) -> str | None:
        return base64.b64decode(self.checksum_sha256).hex() if self.checksum_sha256 else None


@dataclass(frozen=True)
class OpenUpload:
    """An upload ListMultipartUploads reports."""

    key: str
    upload_id: str
    initiated: datetime


def start(client: S3Client, *, bucket: str, key: str, content_type: str) -> str:
    """CreateMultipartUpload; its UploadId."""
    created = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
    return created["UploadId"]


def presign_part(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    upload_id: str,
    number: int,
    length: int | None,
    sha256_hex: str | None,
    expires_in: int,
) -> PresignedUpload:
    """A presigned UploadPart binding the part's length (unless None: the client sizes its
    parts) and (optionally) its SHA-256.

    ``headers`` are the signed ones but ``Content-Length``: the client sends exactly them with
    a body of ``length`` bytes.
    """
    params: dict[str, Any] = {
        "Bucket": bucket,
        "Key": key,
        "UploadId": upload_id,
        "PartNumber": number,
    }
    if length is not None:
        params["ContentLength"] = length
    return presign_body(client, "upload_part", params, {}, sha256_hex, expires_in)


def list_parts(client: S3Client, *, bucket: str, key: str, upload_id: str) -> list[StoredPart]:
    """Every part stored so far (ListParts, all pages), by number; ``UploadNotOpen`` if none."""
    parts: list[StoredPart] = []
    pages = client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id)
    with _refusals():
        for page in pages:
            parts.extend(
                StoredPart(
                    number=part["PartNumber"],
                    etag=part["ETag"],
                    size=part["Size"],
                    checksum_sha256=part.get("ChecksumSHA256"),
                )
                for part in page.get("Parts", [])
            )
    return sorted(parts, key=lambda part: part.number)


def complete(
    client: S3Client, *, bucket: str, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
) -> None:
    """CompleteMultipartUpload of ``(number, etag)`` parts, creating the object only if absent."""
    with _refusals():
        client.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]},
            IfNoneMatch="*",
        )


def abort(client: S3Client, *, bucket: str, key: str, upload_id: str) -> bool:
    """AbortMultipartUpload; False if the upload was not open (already completed or aborted)."""
    try:
        with _refusals():
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except UploadNotOpen:
        return False
    return True


def open_uploads(client: S3Client, *, bucket: str) -> Iterator[OpenUpload]:
    """Every upload open in ``bucket`` (ListMultipartUploads, all pages)."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            yield OpenUpload(upload["Key"], upload["UploadId"], upload["Initiated"])


def object_exists(client: S3Client, *, bucket: str, key: str) -> bool:
    """Whether ``key`` holds an object (so an upload to it that is not open was completed)."""
    return head_object(client, bucket, key) is not None


@contextmanager
def _refusals() -> Iterator[None]:
    """Turns storage's refusals of a multipart operation into ``MultipartError``s."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        if code in _GONE:
            raise UploadNotOpen(f"upload not open: {code}") from exc
        if code in _REFUSED_PARTS:
            raise PartsRefused(f"{code}: {error.get('Message', '')}") from exc
        raise
