"""The real ``@uppy/core`` and ``@uppy/aws-s3`` (``uppy/package-lock.json``) upload through
filepipe's Companion routes with just ``endpoint`` (the front) and ``headers`` (the API key),
from a page on another origin.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import MIB, WEB, png, static_server
from tests.support.multipart import pdf_bytes
from tests.support.stack import Stack, part_puts
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

UPPY = Path(__file__).parent / "uppy"
UPPY_PART = 5 * MIB
"""Uppy's part size for files under 50 GB."""


@pytest.fixture(scope="module")
def uppy_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Uppy test page with its script bundled by esbuild, on an origin of its own. The
    pinned packages are installed with ``npm ci`` when missing."""
    if not (UPPY / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=UPPY, check=True, timeout=300)
    site = tmp_path_factory.mktemp("uppy-page")
    esbuild = UPPY / "node_modules" / ".bin" / "esbuild"
    bundle = [str(esbuild), "entry.js", "--bundle", "--format=iife", f"--outfile={site}/uppy.js"]
    subprocess.run(bundle, cwd=UPPY, check=True, timeout=120, capture_output=True)
    shutil.copy(UPPY / "index.html", site)
    shutil.copy(WEB / "style.css", site)
    with static_server(site) as origin:
        yield origin


def processed(stack: Stack, key: str, filename: str) -> dict[str, Any] | None:
    """The PROCESSED file called ``filename``, if there is one yet."""
    answer = httpx.get(
        f"{stack.url}/files",
        params={"filename": filename, "status": "PROCESSED"},
        headers={"Authorization": f"Bearer {key}"},
    )
    answer.raise_for_status()
    items: list[dict[str, Any]] = answer.json()["items"]
    return items[0] if items else None


def test_uppy_uploads_a_single_part_and_a_multipart_file(
    page: Page, stack: Stack, api_key: str, uppy_origin: str, s3_log: Path
) -> None:
    big = pdf_bytes(2 * UPPY_PART + MIB, b"uppy")
    page.goto(f"{uppy_origin}/")
    page.set_input_files(
        "#files",
        [png("uppy.png"), FilePayload(name="uppy.pdf", mimeType="application/pdf", buffer=big)],
    )

    result = page.evaluate(
        "([endpoint, key]) => uploadWithUppy(endpoint, key)", [stack.url, api_key]
    )

    assert result == {"successful": ["uppy.png", "uppy.pdf"], "failed": []}
    for name, size in (("uppy.png", 72), ("uppy.pdf", len(big))):
        file = wait_until(
            partial(processed, stack, api_key, name), timeout=30, what=f"{name} PROCESSED"
        )
        assert file["size"] == size
        page.evaluate("([name, status]) => showStatus(name, status)", [name, file["status"]])
        if name == "uppy.pdf":
            assert sorted(part_puts(s3_log, file["key"])) == [1, 2, 3]
    expect(page.locator("#results li")).to_have_text(["uppy.png: PROCESSED", "uppy.pdf: PROCESSED"])
