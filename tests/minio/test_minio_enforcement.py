"""MinIO enforces what presign signs: the body's SHA-256, its type and length, and the signature.

moto's S3 server checks none of this (see ARCHITECTURE.md), so these run only against a real
MinIO: set ``FILEPIPE_TEST_MINIO_ENDPOINT`` (e.g. ``http://127.0.0.1:9000``) and optionally
``FILEPIPE_TEST_MINIO_ACCESS_KEY``, ``FILEPIPE_TEST_MINIO_SECRET_KEY``,
``FILEPIPE_TEST_MINIO_BUCKET`` (which must exist). The GitHub workflow does.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests

from filepipe.config import Settings
from filepipe.storage import create_s3_client, presign_put
from filepipe.upload.create import object_key

ENDPOINT = os.environ.get("FILEPIPE_TEST_MINIO_ENDPOINT")

pytestmark = [
    pytest.mark.minio,
    pytest.mark.skipif(not ENDPOINT, reason="FILEPIPE_TEST_MINIO_ENDPOINT is not set"),
]

BODY = b"filepipe MinIO enforcement check\n" * 4
CONTENT_TYPE = "text/plain"


@pytest.fixture(scope="module")
def settings() -> Settings:
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


def _presign(settings: Settings, key: str, body: bytes = BODY) -> tuple[str, dict[str, str]]:
    upload = presign_put(
        create_s3_client(settings, public=True),
        bucket=settings.s3_bucket,
        key=key,
        content_type=CONTENT_TYPE,
        size=len(body),
        sha256_hex=hashlib.sha256(body).hexdigest(),
        expires_in=300,
    )
    return upload.url, upload.headers


def _exists(settings: Settings, key: str) -> bool:
    client = create_s3_client(settings)
    listing = client.list_objects_v2(Bucket=settings.s3_bucket, Prefix=key)
    return any(item["Key"] == key for item in listing.get("Contents", []))


def test_the_declared_body_is_accepted(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    response = requests.put(url, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert _exists(settings, key)


def test_a_body_with_another_sha256_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    forged = bytes(reversed(BODY))  # same length and type, another digest
    response = requests.put(url, data=forged, headers=headers, timeout=10)
    assert response.status_code in {400, 403}, response.text
    assert not _exists(settings, key)


def test_another_content_type_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    response = requests.put(
        url, data=BODY, headers={**headers, "Content-Type": "text/html"}, timeout=10
    )
    assert response.status_code == 403, response.text
    assert "SignatureDoesNotMatch" in response.text
    assert not _exists(settings, key)


def test_a_dropped_checksum_header_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    headers.pop("x-amz-checksum-sha256")
    response = requests.put(url, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 403, response.text
    assert not _exists(settings, key)


def test_a_tampered_expiry_is_refused(settings: Settings, key: str) -> None:
    url, headers = _presign(settings, key)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Expires"] = "604800"
    tampered = urlunsplit(parts._replace(query=urlencode(query)))
    response = requests.put(tampered, data=BODY, headers=headers, timeout=10)
    assert response.status_code == 403, response.text
    assert not _exists(settings, key)
