"""MinIO and the local S3 server refuse the same presigned PUTs, with the same answers.

What presign signs (type, length, SHA-256, ``If-None-Match: *``, expiry) is enforced by the
storage: each case runs against the local S3 server (``local.s3_guard``) and, when
``FILEPIPE_TEST_MINIO_ENDPOINT`` is set (e.g. ``http://127.0.0.1:9000``; the GitHub workflow
sets it), against a real MinIO, with optionally ``FILEPIPE_TEST_MINIO_ACCESS_KEY``,
``FILEPIPE_TEST_MINIO_SECRET_KEY``, ``FILEPIPE_TEST_MINIO_BUCKET`` (which must exist). The
expected codes are MinIO's (``cmd/api-errors.go``), which the local server copies.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from filepipe.config import Settings
from filepipe.presigner import Presigner
from filepipe.storage import create_s3_client, presign_put
from filepipe.upload.create import object_key
from tests.support.signing import clock_shifter, with_query

ENDPOINT = os.environ.get("FILEPIPE_TEST_MINIO_ENDPOINT")

BODY = b"filepipe MinIO enforcement check\n" * 4
CONTENT_TYPE = "text/plain"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("local", marks=pytest.mark.integration),
        pytest.param(
            "minio",
            marks=[
                pytest.mark.minio,
                pytest.mark.skipif(not ENDPOINT, reason="FILEPIPE_TEST_MINIO_ENDPOINT is not set"),
            ],
        ),
    ],
)
def settings(request: pytest.FixtureRequest) -> Settings:
    if request.param == "local":
        s3_env: dict[str, str] = request.getfixturevalue("s3_env")
        endpoint: str = request.getfixturevalue("s3_server")
        return Settings.from_env({**s3_env, "FILEPIPE_S3_ENDPOINT_URL": endpoint})
    return Settings(
        s3_endpoint_url=ENDPOINT,
        s3_region=os.environ.get("FILEPIPE_TEST_MINIO_REGION", "us-east-1"),
        s3_bucket=os.environ.get("FILEPIPE_TEST_MINIO_BUCKET", "uploads"),
        s3_access_key_id=os.environ.get("FILEPIPE_TEST_MINIO_ACCESS_KEY", "minioadmin"),
        s3_secret_access_key=os.environ.get("FILEPIPE_TEST_MINIO_SECRET_KEY", "minioadmin"),
    )


@pytest.fixture
def key(settings: Settings) -> Iterator[str]:
    name = object_key("minio-test", uuid.uuid4(), "check.txt")
    yield name
    client = create_s3_client(settings)
    client.delete_object(Bucket=settings.s3_bucket, Key=name)


def _presign(
    settings: Settings, key: str, body: bytes = BODY, *, sha256: bool = True
) -> tuple[str, dict[str, str]]:
    upload = presign_put(
        Presigner.of(create_s3_client(settings, public=True)),
        bucket=settings.s3_bucket,
        key=key,
        content_type=CONTENT_TYPE,
        size=len(body),
        sha256_hex=hashlib.sha256(body).hexdigest() if sha256 else None,
        expires_in=300,
    )
    return upload.url, upload.headers


def _put(url: str, headers: dict[str, str], body: bytes = BODY) -> requests.Response:
    return requests.put(url, data=body, headers=headers, timeout=10)


def _code(response: requests.Response) -> tuple[int, str]:
    found = re.search(r"<Code>([^<]*)</Code>", response.text)
    return response.status_code, found.group(1) if found else ""


def _stored(settings: Settings, key: str) -> bytes | None:
    client = create_s3_client(settings)
    listing = client.list_objects_v2(Bucket=settings.s3_bucket, Prefix=key)
    if not any(item["Key"] == key for item in listing.get("Contents", [])):
        return None
    return client.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()


def test_the_declared_body_is_accepted(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    response = _put(url, headers)
    assert response.status_code == 200, response.text
    assert _stored(settings, key) == BODY


def test_a_body_with_another_sha256_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    forged = bytes(reversed(BODY))  # same length and type, another digest
    response = _put(url, headers, forged)
    assert _code(response) == (400, "XAmzContentChecksumMismatch"), response.text
    assert _stored(settings, key) is None


def test_another_content_type_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    response = _put(url, {**headers, "Content-Type": "text/html"})
    assert _code(response) == (403, "SignatureDoesNotMatch"), response.text
    assert _stored(settings, key) is None


def test_another_length_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key, sha256=False)
    response = _put(url, headers, BODY + b"!")
    assert _code(response) == (403, "SignatureDoesNotMatch"), response.text
    assert _stored(settings, key) is None


@pytest.mark.parametrize("header", ["x-amz-checksum-sha256", "If-None-Match"])
def test_a_dropped_signed_header_is_refused(settings: Settings, key: str, header: str) -> None:
    url, headers = _presign(settings, key)
    headers.pop(header)
    response = _put(url, headers)
    # MinIO: ErrUnsignedHeaders ("There were headers present in the request which were not
    # signed"), 400 AccessDenied; S3 itself answers 403 SignatureDoesNotMatch.
    assert _code(response) == (400, "AccessDenied"), response.text
    assert _stored(settings, key) is None


def test_a_tampered_expiry_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    tampered = with_query(url, **{"X-Amz-Expires": "604800"})
    response = _put(tampered, headers)
    assert _code(response) == (403, "SignatureDoesNotMatch"), response.text
    assert _stored(settings, key) is None


def test_an_expired_url_is_refused(
    settings: Settings, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock_shifter(monkeypatch)(-301)  # signed 301 s ago, valid for 300 s
    url, headers = _presign(settings, key)
    response = _put(url, headers)
    assert _code(response) == (403, "AccessDenied"), response.text
    assert "Request has expired" in response.text
    assert _stored(settings, key) is None


def test_the_url_creates_its_object_once(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key, sha256=False)
    assert _put(url, headers).status_code == 200
    again = _put(url, headers, BODY.upper())  # same length and type
    assert _code(again) == (412, "PreconditionFailed"), again.text
    assert _stored(settings, key) == BODY
