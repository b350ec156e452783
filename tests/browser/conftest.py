"""The upload page (``web/``) in Debian's Chromium, driven by Playwright, against the whole
stack behind ``local.front``.

Each test's final page is saved to ``screenshots/<test>.png`` (git-ignored, kept by the run).
Files from ``MULTIPART_FROM`` bytes on go in parts (the page's constant of the same name).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import psycopg
import pytest
from playwright.sync_api import (
    Browser,
    FilePayload,
    Locator,
    Page,
    Playwright,
    sync_playwright,
)

from filepipe import auth
from tests.support.stack import LOCAL_ORIGINS, Stack, full_stack

CHROMIUM = os.environ.get("FILEPIPE_TEST_CHROMIUM", "/usr/bin/chromium")
"""Debian's chromium (``.ci/run`` installs it); Playwright downloads no browser here."""
SCREENSHOTS = Path(__file__).parent / "screenshots"
WEB = Path(__file__).parents[2] / "web"
MIB = 1024 * 1024
MULTIPART_FROM = 16 * MIB
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PROCESSING = 30_000
"""Milliseconds to wait for a status the pipeline sets."""


@pytest.fixture(scope="package")
def stack(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Stopped after this package: its broker emulator consumes the session S3 server's
    notifications, which other tests' pipelines must receive."""
    with full_stack(
        service_env,
        logs=tmp_path_factory.mktemp("browser-stack"),
        FILEPIPE_ALLOWED_ORIGINS=LOCAL_ORIGINS,
        FILEPIPE_CURSOR_SECRET="browser-tests-cursor-secret",
    ) as running:
        yield running


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context's page; its last state is saved as a screenshot, and what it
    logged is printed (pytest shows it when the test fails)."""
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    opened = context.new_page()
    opened.on("console", lambda message: print(f"console {message.type}: {message.text}"))
    try:
        yield opened
    finally:
        SCREENSHOTS.mkdir(exist_ok=True)
        opened.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
        context.close()


@contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """``directory``'s files over HTTP on another origin than the front's (``localhost``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(directory)))
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="package")
def other_origin() -> Iterator[str]:
    """``web/`` served from another origin than the front's."""
    with static_server(WEB) as origin:
        yield origin


@pytest.fixture
def api_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    """A key of a tenant of this test alone."""
    return auth.create_key(conn, f"web-{uuid.uuid4().hex[:10]}")


def open_page(page: Page, origin: str, credential: str, *, api: str | None = None) -> None:
    """Load the page from ``origin`` with ``credential`` in the fragment (and ``api``, the
    filepipe origin when it is another)."""
    fragment = f"token={credential}" + (f"&api={api}" if api else "")
    page.goto(f"{origin}/#{fragment}")
    page.wait_for_function("() => location.hash === ''")


def upload_row(page: Page, name: str) -> Locator:
    """The row of the upload of the file called ``name``."""
    return page.locator(".upload", has=page.locator(".name", has_text=name))


def png(name: str, padding: int = 0) -> FilePayload:
    """A file called ``name`` that sniffs as a PNG, ``padding`` zero bytes longer."""
    return FilePayload(name=name, mimeType="image/png", buffer=PNG + bytes(padding))
