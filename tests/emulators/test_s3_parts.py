"""UploadPart through presigned URLs (``filepipe.multipart_storage.presign_part``) against the
local S3 server over HTTP: it checks what MinIO checks (SigV4, expiry, the signed length and
``x-amz-checksum-sha256``) before moto stores a part, and a completed upload notifies once."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
import requests

from filepipe import multipart_storage
from filepipe.config import Settings
from tests.emulators.test_s3_enforcement import assert_refused
from tests.support.inbox import Inbox

pytestmark = pytest.mark.integration

PART = b"%PDF-1.7\n" + b"p" * (5 * 1024 * 1024)


def part_url(
    presigner: Any, settings: Settings, upload: Any, *, sha256: bool = True, expires_in: int = 300
) -> Any:
    key, upload_id = upload
    return multipart_storage.presign_part(
        presigner,
        bucket=settings.s3_bucket,
        key=key,
        upload_id=upload_id,
        number=1,
        length=len(PART),
        sha256_hex=hashlib.sha256(PART).hexdigest() if sha256 else None,
        expires_in=expires_in,
    )


def send(signed: Any, body: bytes = PART, **headers: str) -> requests.Response:
    return requests.put(signed.url, data=body, headers={**signed.headers, **headers}, timeout=30)


def parts_of(admin: Any, settings: Settings, upload: Any) -> list[multipart_storage.StoredPart]:
    key, upload_id = upload
    return multipart_storage.list_parts(
        admin, bucket=settings.s3_bucket, key=key, upload_id=upload_id
    )


def test_a_part_with_its_signed_length_and_digest_is_stored(
    presigner: Any, admin: Any, settings: Settings, upload: Any
) -> None:
    signed = part_url(presigner, settings, upload)

    response = send(signed)

    assert response.status_code == 200, response.text
    assert "content-length" in signed.url.lower()  # X-Amz-SignedHeaders names it
    assert "x-amz-checksum-sha256" in signed.url.lower()
    [part] = parts_of(admin, settings, upload)
    assert (part.number, part.size, part.etag) == (1, len(PART), response.headers["ETag"])


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (PART.replace(b"p", b"q", 1), {}, 400, "XAmzContentChecksumMismatch"),
        (PART + b"!", {}, 403, "SignatureDoesNotMatch"),
        (PART, {"x-amz-checksum-sha256": base64.b64encode(b"\0" * 32).decode()}, 403,
         "SignatureDoesNotMatch"),
    ],
    ids=["other bytes", "other length", "other digest header"],
)  # fmt: skip
def test_a_part_other_than_the_signed_one_is_refused_and_not_stored(
    presigner: Any,
    admin: Any,
    settings: Settings,
    upload: Any,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = send(part_url(presigner, settings, upload), body, **headers)

    assert_refused(response, status, code)
    assert parts_of(admin, settings, upload) == []


def test_a_part_without_its_signed_digest_header_is_refused(
    presigner: Any, admin: Any, settings: Settings, upload: Any
) -> None:
    signed = part_url(presigner, settings, upload)
    headers = {k: v for k, v in signed.headers.items() if k != "x-amz-checksum-sha256"}

    response = requests.put(signed.url, data=PART, headers=headers, timeout=30)

    assert_refused(response, 400, "AccessDenied")  # MinIO's ErrUnsignedHeaders
    assert "headers present in the request which were not signed" in response.text
    assert parts_of(admin, settings, upload) == []


def test_an_expired_part_url_is_refused(
    presigner: Any, admin: Any, settings: Settings, upload: Any, signing_clock: Any
) -> None:
    signing_clock(-301)  # signed 301 s ago, valid for 300 s
    response = send(part_url(presigner, settings, upload, sha256=False))

    assert_refused(response, 403, "AccessDenied")
    assert "Request has expired" in response.text
    assert parts_of(admin, settings, upload) == []


def test_completing_creates_the_object_once_and_notifies_once(
    presigner: Any, admin: Any, settings: Settings, upload: Any, notifications: Inbox
) -> None:
    key, upload_id = upload
    etag = send(part_url(presigner, settings, upload)).headers["ETag"]

    multipart_storage.complete(
        admin, bucket=settings.s3_bucket, key=key, upload_id=upload_id, parts=[(1, etag)]
    )

    body = notifications.next()[1]
    assert body["EventName"] == "s3:ObjectCreated:CompleteMultipartUpload"
    assert body["Records"][0]["s3"]["object"]["size"] == len(PART)
    assert notifications.empty()
    with pytest.raises(multipart_storage.UploadNotOpen):
        multipart_storage.complete(
            admin, bucket=settings.s3_bucket, key=key, upload_id=upload_id, parts=[(1, etag)]
        )
    assert multipart_storage.object_exists(admin, bucket=settings.s3_bucket, key=key)
