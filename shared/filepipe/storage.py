"""Object storage (S3 / MinIO through boto3): client factory, presigned uploads and downloads.

The presigned PUT is SigV4 with ``Content-Type``, ``Content-Length``, ``If-None-Match: *`` and,
when a digest is declared, ``x-amz-checksum-sha256`` in ``X-Amz-SignedHeaders``: storage that
checks signatures (S3, MinIO) refuses a request whose headers differ, verifies the body against
the checksum, and answers ``412 PreconditionFailed`` once the key exists (a conditional write), so
the URL creates its object once and cannot overwrite it afterwards. The headers handed to the
client are those a browser may set: ``Content-Length`` is left out (browsers and HTTP clients
send the body's length themselves; the signature still binds it).

The presigned form POST (for a client that cannot say the size up front) is a SigV4 POST policy
fixing the key and ``Content-Type`` and bounding the size with ``content-length-range``; it
cannot bind a digest or forbid an overwrite while it is valid (process re-verifies changed bytes).

The presigned GET signs ``response-content-disposition`` and ``response-content-type``, so storage
answers with the file's name as an attachment (RFC 6266, with an RFC 8187/5987 UTF-8 name) and the
detected content type, and any change to them breaks the signature.

``head_object`` tells whether an object exists (``None``: it does not), which reconcile and
downloads ask of files whose object may have disappeared.

``remove_object`` deletes an object and aborts every unfinished multipart upload of its key, so
no byte of it stays stored (parts of an unfinished upload are stored, and billed, until aborted).
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from filepipe import filenames
from filepipe.config import Settings
from filepipe.presigner import Presigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class PresignedUpload:
    method: str
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class PresignedPost:
    """A browser form upload: POST ``fields`` then the file (a part named ``file``) to ``url``."""

    url: str
    fields: dict[str, str]


READ_TIMEOUT = 30.0
"""Seconds botocore waits for storage's next bytes."""
CONNECT_TIMEOUT = 2.0
"""Seconds botocore waits for a connection: storage that is down is a quick failure (a 503 on
the request path, a retry by the broker in process), not a hung request."""
MAX_ATTEMPTS = 2
"""Attempts per call, the first included: one quick retry of a dropped connection, so a call
to storage that is down takes about ``MAX_ATTEMPTS`` connect attempts, not minutes."""
COMPLETION_READ_TIMEOUT = 300.0
"""Seconds CompleteMultipartUpload may take to answer: storage assembles the whole object
first (S3 may take minutes and keeps the connection alive; MinIO and the local server stay
silent until done, about 30 s for 6 GiB on a loaded 2-core machine)."""


def create_s3_client(
    settings: Settings, *, public: bool = False, read_timeout: float = READ_TIMEOUT
) -> S3Client:
    """A boto3 S3 client for the configured endpoint (path-style, SigV4).

    ``public=True`` targets the endpoint clients reach (``FILEPIPE_S3_PUBLIC_ENDPOINT_URL``),
    which may differ from the one functions use inside the cluster; presigning needs no network.
    """
    endpoint = settings.s3_endpoint_url
    if public and settings.s3_public_endpoint_url:
        endpoint = settings.s3_public_endpoint_url
    kwargs: dict[str, Any] = {}
    if settings.s3_access_key_id and settings.s3_secret_access_key:
        kwargs["aws_access_key_id"] = settings.s3_access_key_id
        kwargs["aws_secret_access_key"] = settings.s3_secret_access_key
    client: S3Client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=settings.s3_region,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            # The process function hashes every byte with SHA-256 and checks it against the
            # declaration; botocore's CRC over the same bytes would cost ~25% of throughput.
            response_checksum_validation="when_required",
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=read_timeout,
        ),
        **kwargs,
    )
    return client


def presign_put(
    presigner: Presigner,
    *,
    bucket: str,
    key: str,
    content_type: str,
    size: int,
    sha256_hex: str | None,
    expires_in: int,
) -> PresignedUpload:
    """A presigned PUT binding the body's type, length and (optionally) SHA-256, creating only.

    ``headers`` are the signed ones but ``Content-Length``: the client sends exactly them with
    a body of ``size`` bytes. Signed by ``filepipe.presigner`` (the URL botocore would make).
    """
    headers = {"Content-Type": content_type, "If-None-Match": "*"}
    if sha256_hex:
        headers["x-amz-checksum-sha256"] = checksum_header(sha256_hex)
    signed = {**headers, "Content-Length": str(size)}
    url = presigner.presign("PUT", bucket, key, headers=signed, expires_in=expires_in)
    return PresignedUpload(method="PUT", url=url, headers=headers)


def checksum_header(sha256_hex: str) -> str:
    """``x-amz-checksum-sha256``: the digest in base64."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def presign_post(
    client: S3Client,
    *,
    bucket: str,
    key: str,
    content_type: str,
    max_size: int,
    expires_in: int,
) -> PresignedPost:
    """A presigned form POST whose policy fixes the key and Content-Type and bounds the size to
    1..``max_size`` bytes (``content-length-range``), for a client that sends no size."""
    fields = {"Content-Type": content_type}
    conditions: list[Any] = [{"Content-Type": content_type}, ["content-length-range", 1, max_size]]
    post = client.generate_presigned_post(
        bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
    )
    return PresignedPost(url=post["url"], fields=dict(post["fields"]))


def presign_body(
    client: S3Client,
    operation: str,
    params: dict[str, Any],
    headers: dict[str, str],
    sha256_hex: str | None,
    expires_in: int,
) -> PresignedUpload:
    """A presigned PUT of ``operation`` signing ``params`` and, when a digest is given,
    ``x-amz-checksum-sha256`` too (added to the ``headers`` the client must send; a
    ``ContentLength`` in ``params`` is signed, and sent by the client as the body's length)."""
    if sha256_hex:
        checksum = checksum_header(sha256_hex)
        params = {**params, "ChecksumSHA256": checksum}
        headers = {**headers, "x-amz-checksum-sha256": checksum}
    url = client.generate_presigned_url(
        operation, Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
    )
    return PresignedUpload(method="PUT", url=url, headers=headers)


_UNSAFE_FALLBACK_CHARS = re.compile(r"[^A-Za-z0-9 ._()+-]")
_ATTR_CHARS = "!#$&+.^_`|~-"
"""RFC 8187 ``attr-char`` besides letters and digits: left as they are in ``filename*``."""
FALLBACK_FILENAME = "download"
_MAX_FALLBACK_CHARS = 150


def content_disposition(filename: str) -> str:
    """``attachment`` with ``filename`` as a safe quoted ASCII fallback and as ``filename*``.

    The fallback keeps letters, digits, space and ``. _ ( ) + -``; every other character (quotes,
    backslashes, ``%``, ``;``, controls, non-ASCII, look-alikes) becomes ``_``, so it cannot end
    the quoted string, be read as percent-encoding or name a path. ``filename*`` carries the
    NFKC-normalised name, UTF-8 and percent-encoded (RFC 8187), for clients that read it; there
    too, slashes, backslashes and their look-alikes, controls, invisible formatting characters
    and separators other than the space become ``_``.
    """
    name = "".join(
        "_"
        if filenames.is_separator(char) or (unicodedata.category(char)[0] in "CZ" and char != " ")
        else char
        for char in filenames.normalize(filename)
    )
    fallback = _UNSAFE_FALLBACK_CHARS.sub("_", name)[:_MAX_FALLBACK_CHARS].strip(" .")
    fallback = fallback or FALLBACK_FILENAME
    encoded = quote(name or FALLBACK_FILENAME, safe=_ATTR_CHARS, encoding="utf-8")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def presign_get(
    client: S3Client,
    bucket: str,
    key: str,
    filename: str,
    content_type: str,
    expires_in: int,
) -> str:
    """A presigned GET of the object, answered as an attachment named ``filename`` of type
    ``content_type`` (both signed), valid for ``expires_in`` seconds."""
    url: str = client.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": content_type,
        },
        ExpiresIn=expires_in,
        HttpMethod="GET",
    )
    return url


ABSENT_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
"""S3's error codes (GetObject, HeadObject) for a key that holds no object."""


def is_absent(exc: ClientError) -> bool:
    """Whether ``exc`` says the object does not exist (not that storage failed)."""
    return exc.response.get("Error", {}).get("Code") in ABSENT_CODES


def head_object(client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's metadata (HeadObject), or ``None`` if ``key`` holds no object.

    botocore's other errors propagate: the caller decides whether they are an outage.
    """
    try:
        return dict(client.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if is_absent(exc):
            return None
        raise


def remove_object(client: S3Client, bucket: str, key: str) -> int:
    """Abort every unfinished multipart upload of exactly ``key`` (ListMultipartUploads by
    prefix), then delete the object (absent already: nothing to do); returns how many uploads
    were aborted. Aborting first, an upload that completes meanwhile is deleted with the rest.

    botocore's errors propagate (but for an upload that ended meanwhile): the caller decides
    whether they are an outage.
    """
    aborted = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
        for upload in page.get("Uploads", []):
            if upload.get("Key") != key or "UploadId" not in upload:
                continue
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                continue
            aborted += 1
    client.delete_object(Bucket=bucket, Key=key)
    return aborted


def readinto_of(body: Any) -> Callable[[memoryview], int]:
    """A zero-copy ``readinto`` for a GetObject body.

    botocore's ``StreamingBody`` only offers ``read()``, which allocates and copies every chunk
    through urllib3 (about a third slower on this path). The ``http.client`` response underneath
    reads straight into the caller's buffer; when it is not reachable, ``read()`` is copied in.
    Callers must check the byte count against ``ContentLength``: ``http.client`` ends a cut
    connection quietly.
    """
    raw = getattr(getattr(body, "_raw_stream", None), "_fp", None)
    if raw is not None and callable(getattr(raw, "readinto", None)):
        readinto: Callable[[memoryview], int] = raw.readinto
        return readinto

    def copy_into(buffer: memoryview) -> int:
        data = body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    return copy_into
