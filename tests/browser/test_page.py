"""The page on the front's origin: uploads in one PUT and in parts, live status, the list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import (
    MIB,
    MULTIPART_FROM,
    PNG,
    PROCESSING,
    open_page,
    png,
    upload_row,
)
from tests.support.multipart import pdf_bytes
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_three_files_one_multipart_end_processed(
    page: Page, stack: Stack, api_key: str, tmp_path: Path
) -> None:
    files = {
        "small.png": PNG,
        "notes.pdf": pdf_bytes(3000, b"notes"),
        "large.pdf": pdf_bytes(MULTIPART_FROM + 4 * MIB, b"large"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    open_page(page, stack.url, api_key)
    expect(page.locator("#credential")).to_have_value(api_key)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))

    page.set_input_files("#picker", [tmp_path / name for name in files])

    for name in files:
        upload = upload_row(page, name)
        expect(upload.locator(".status")).to_have_text("PROCESSED", timeout=PROCESSING)
        expect(upload.locator("progress")).to_have_js_property("value", 1)
        expect(upload.locator(".speed")).to_have_text(re.compile(r"^\d+(\.\d)? [KMG]?i?B/s$"))
    assert sum("/parts" in r for r in requests) == 1
    assert sum(r.endswith("/complete") for r in requests) == 1
    assert sum(r.startswith("PUT ") and "partNumber=" in r for r in requests) == 2
    listed = page.locator("#files tr")
    for name in files:
        expect(listed.filter(has_text=name).locator(".status")).to_have_text("PROCESSED")


def test_a_lying_file_is_rejected_with_the_reason(page: Page, stack: Stack, api_key: str) -> None:
    open_page(page, stack.url, api_key)
    dropped = page.evaluate_handle(
        """([name, bytes]) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name, {type: "application/pdf"}));
            return data;
        }""",
        ["invoice.pdf", list(PNG)],
    )

    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})

    upload = upload_row(page, "invoice.pdf")
    expect(upload.locator(".status")).to_have_text("REJECTED", timeout=PROCESSING)
    expect(upload.locator(".reason")).to_have_text("content is image/png, application/pdf declared")


def test_list_filters_download_and_delete(page: Page, stack: Stack, api_key: str) -> None:
    open_page(page, stack.url, api_key)
    page.set_input_files(
        "#picker",
        [
            png("a.png"),
            FilePayload(name="b.pdf", mimeType="application/pdf", buffer=pdf_bytes(2000, b"b")),
        ],
    )
    for name in ("a.png", "b.pdf"):
        expect(page.locator("#files tr", has_text=name).locator(".status")).to_have_text(
            "PROCESSED", timeout=PROCESSING
        )

    page.fill("#filters [name=content_type]", "image/png")
    page.click("#filters button")
    expect(page.locator("#files tr")).to_have_count(1)
    expect(page.locator("#files tr")).to_contain_text("a.png")

    with page.expect_download() as download:
        page.locator("#files tr", has_text="a.png").get_by_role("button", name="Download").click()
    assert download.value.suggested_filename == "a.png"
    assert Path(download.value.path()).read_bytes() == PNG

    page.locator("#files tr", has_text="a.png").get_by_role("button", name="Delete").click()
    expect(page.locator("#files tr")).to_have_count(0)
    page.select_option("#filters [name=status]", "DELETED")
    page.click("#filters button")
    expect(page.locator("#files tr", has_text="a.png").locator(".status")).to_have_text("DELETED")
