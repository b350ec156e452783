"""The republisher: an event the broker could not take is published within seconds once the
broker is back, by the function's own background thread (no reconcile runs here), and the
thread stops with its runtime."""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from flask.testing import FlaskClient

from filepipe import runtime
from tests.support.functions import function_app
from tests.support.receiver import receiving
from tests.support.uploads import request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"republish " * 50 + b"\n%%EOF\n"


def republishers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "filepipe-republisher" and t.is_alive()]


def attempts(conn: Conn, event_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT attempts, published_at FROM events WHERE id = %s", (event_id,)
    ).fetchone()


def test_a_refused_event_is_published_soon_after_the_broker_is_back(
    presign_broker_down: FlaskClient, api_key: str, conn: Conn, closed_port_url: str
) -> None:
    started = time.monotonic()
    upload = request_upload(presign_broker_down, api_key, PDF, filename="later.pdf")
    answered_in = time.monotonic() - started
    event = conn.execute("SELECT id FROM events WHERE file_id = %s", (upload["id"],)).fetchone()
    assert event is not None
    # The answer did not wait for retries: the first try was refused at once.
    assert answered_in < 5
    # The republisher retries the closed sink in the background (after 1 s, then 2 s, …).
    wait_until(
        lambda: (row := attempts(conn, event["id"])) and row["attempts"] >= 2,
        timeout=10,
        what="the republisher's first retry",
    )
    assert attempts(conn, event["id"])["published_at"] is None  # type: ignore[index]

    with receiving(port=urlsplit(closed_port_url).port or 0) as broker:
        received = broker.wait_for("/", id=event["id"], timeout=10)

    assert received[0].ce("type") == "file.created"
    published = wait_until(
        lambda: (row := attempts(conn, event["id"])) and row["published_at"],
        what="the publish to be recorded",
    )
    assert published
    assert len(republishers()) == 1

    runtime.reset()  # Runtime.close

    assert republishers() == []


def test_no_thread_runs_while_every_publish_succeeds(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    with receiving() as broker:
        monkeypatch.setenv("K_SINK", f"{broker.url}/")
        upload = request_upload(function_app("presign").test_client(), api_key, PDF)
        assert broker.wait_for("/", timeout=10)[0].ce("subject") == upload["id"]

    assert republishers() == []
