"""Browsers and the local S3 server (``local.s3_cors``): preflights from the allowed origins
(``LOCAL_ORIGINS``, patterns) answered, others refused; answers to them expose ``ETag`` and the
checksums, so a page can complete a multipart upload with parts sent with only the listed
headers (the browser sets ``Content-Length``, which the URL signs)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
import requests

from filepipe import multipart_storage
from filepipe.config import Settings
from filepipe.presigner import Presigner
from filepipe.storage import presign_put
from tests.emulators.test_s3_enforcement import assert_refused
from tests.emulators.test_s3_parts import PART, part_url

pytestmark = pytest.mark.integration

PAGE = "http://localhost:5173"
OTHER_PAGE = "https://evil.example.com"


def preflight(url: str, origin: str, method: str = "PUT") -> requests.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,if-none-match,x-amz-checksum-sha256",
    }
    return requests.options(url, headers=headers, timeout=10)


@pytest.mark.parametrize("method", ["PUT", "POST", "GET", "HEAD"])
@pytest.mark.parametrize("origin", [PAGE, "http://127.0.0.1:8080"])
def test_a_preflight_from_an_allowed_origin_is_answered(
    s3_server: str, settings: Settings, origin: str, method: str
) -> None:
    response = preflight(f"{s3_server}/{settings.s3_bucket}/any/key?uploadId=x", origin, method)
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT"
    assert response.headers["Access-Control-Allow-Headers"] == (
        "content-type,if-none-match,x-amz-checksum-sha256"
    )
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    ("origin", "method"),
    [(OTHER_PAGE, "PUT"), ("http://localhost.evil.example", "PUT"), (PAGE, "DELETE")],
)
def test_other_preflights_are_refused_without_cors_headers(
    s3_server: str, settings: Settings, origin: str, method: str
) -> None:
    response = preflight(f"{s3_server}/{settings.s3_bucket}/any/key", origin, method)
    assert_refused(response, 403, "AccessForbidden")
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_a_part_sent_with_only_the_listed_headers_exposes_its_etag(
    presigner: Any, admin: Any, settings: Settings, upload: tuple[str, str]
) -> None:
    signed = part_url(presigner, settings, upload)
    assert set(signed.headers) == {"x-amz-checksum-sha256"}  # no Content-Length to set

    response = requests.put(
        signed.url, data=PART, headers={**signed.headers, "Origin": PAGE}, timeout=30
    )

    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"etag", "x-amz-checksum-sha256"} <= exposed
    assert response.headers["ETag"] == f'"{hashlib.md5(PART, usedforsecurity=False).hexdigest()}"'
    key, upload_id = upload
    [part] = multipart_storage.list_parts(
        admin, bucket=settings.s3_bucket, key=key, upload_id=upload_id
    )
    assert (part.number, part.size) == (1, len(PART))


def test_a_single_put_of_another_length_is_still_refused_and_says_so_to_the_page(
    presigner: Any, admin: Any, settings: Settings
) -> None:
    key = f"cors/{uuid.uuid4()}/doc.pdf"
    body = b"%PDF-1.7 small"
    upload = presign_put(
        Presigner.of(presigner),
        bucket=settings.s3_bucket,
        key=key,
        content_type="application/pdf",
        size=len(body),
        sha256_hex=None,
        expires_in=300,
    )
    assert "Content-Length" not in upload.headers
    assert "content-length" in upload.url  # X-Amz-SignedHeaders still names it

    headers = {**upload.headers, "Origin": PAGE}
    longer = requests.put(upload.url, data=body + b"!", headers=headers, timeout=10)
    assert_refused(longer, 403, "SignatureDoesNotMatch")
    assert longer.headers["Access-Control-Allow-Origin"] == PAGE  # the page can read why

    stored = requests.put(upload.url, data=body, headers=headers, timeout=10)
    assert stored.status_code == 200, stored.text
    assert stored.headers["ETag"]


def test_answers_to_other_origins_carry_no_cors_headers(
    presigner: Any, settings: Settings, upload: tuple[str, str]
) -> None:
    signed = part_url(presigner, settings, upload)
    response = requests.put(
        signed.url, data=PART, headers={**signed.headers, "Origin": OTHER_PAGE}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert "Access-Control-Allow-Origin" not in response.headers
