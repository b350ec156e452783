"""The page with upload tokens: from another origin, and the 4xx of tokens that may not upload.

NEEDS the front to route ``/upload-tokens`` (branch cors) and upload tokens (branch tokens).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect

from filepipe import upload_tokens
from tests.browser.conftest import PROCESSING, open_page, png, upload_row
from tests.conftest import UPLOAD_TOKEN_SECRET
from tests.support.multipart import pdf_bytes
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def upload_token(stack: Stack, api_key: str, **scope: Any) -> str:
    """A token from ``POST /upload-tokens`` through the front, as a customer's backend asks."""
    answer = httpx.post(
        f"{stack.url}/upload-tokens", json=scope, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    assert isinstance(token, str)
    return token


def test_a_page_on_another_origin_uploads_with_a_token(
    page: Page, stack: Stack, api_key: str, other_origin: str
) -> None:
    token = upload_token(stack, api_key, max_files=2, content_types=["image/png"])
    open_page(page, other_origin, token, api=stack.url)
    expect(page.locator("#recent")).to_be_hidden()

    page.set_input_files("#picker", [png("photo.png")])

    upload = upload_row(page, "photo.png")
    expect(upload.locator(".status")).to_have_text("PROCESSED", timeout=PROCESSING)
    listed = httpx.get(
        f"{stack.url}/files",
        params={"filename": "photo.png"},
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()["items"]
    assert [file["status"] for file in listed] == ["PROCESSED"]


def test_over_scope_and_expired_tokens_show_their_4xx(
    page: Page, stack: Stack, api_key: str, other_origin: str
) -> None:
    token = upload_token(
        stack, api_key, max_files=5, max_file_bytes=1000, content_types=["image/png"]
    )
    open_page(page, other_origin, token, api=stack.url)
    page.set_input_files(
        "#picker",
        [
            FilePayload(name="report.pdf", mimeType="application/pdf", buffer=pdf_bytes(500)),
            png("big.png", 2000),
        ],
    )
    for name, status in (("report.pdf", "415"), ("big.png", "413")):
        upload = upload_row(page, name)
        expect(upload.locator(".status")).to_have_text("ERROR")
        expect(upload.locator(".reason")).to_contain_text(f"{status} ")

    tenant = upload_tokens.decode(token, [UPLOAD_TOKEN_SECRET]).tenant
    scope = upload_tokens.Scope(max_files=1, max_file_bytes=1000, content_types=("image/png",))
    _, expired = upload_tokens.mint(
        tenant, scope, lifetime=60, secret=UPLOAD_TOKEN_SECRET, now=time.time() - 120
    )
    page.fill("#credential", expired)
    page.click("#credential-form button")
    page.set_input_files("#picker", [png("late.png")])
    upload = upload_row(page, "late.png")
    expect(upload.locator(".status")).to_have_text("ERROR")
    expect(upload.locator(".reason")).to_contain_text("401 ")
    expect(upload.locator(".reason")).to_contain_text("expired")
