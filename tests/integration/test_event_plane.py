"""Only the broker may send events to the internal targets: process (bucket events, dead letters,
pings) and notify refuse a sender without the broker's ``X-Filepipe-Event-Token``, before they
parse anything, while the broker emulator's deliveries (which carry it) go through."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from flask.testing import FlaskClient

from filepipe.web.senders import TOKEN_HEADER
from tests.support.files import Conn
from tests.support.functions import function_app
from tests.support.pipeline import EVENT_TOKEN, Pipeline, pipeline
from tests.support.uploads import put, request_upload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.7\n" + b"event plane " * 40 + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def pipe(service_env: dict[str, str]) -> Iterator[Pipeline]:
    with pipeline(service_env) as running_pipe:
        yield running_pipe


def dead_letter(upload: dict[str, Any]) -> CloudEvent:
    """What the dead-letter sink would deliver for ``upload``'s object."""
    record = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": upload["bucket"]}, "object": {"key": upload["key"]}},
    }
    return CloudEvent(
        {
            "type": "dev.knative.rabbitmq.event",
            "source": "/forged",
            "id": str(uuid.uuid4()),
            "knativeerrorcode": "500",
            "knativeerrordata": base64.b64encode(b"forged").decode(),
        },
        {"EventName": "s3:ObjectCreated:Put", "Records": [record]},
    )


def post(url: str, event: CloudEvent, token: str | None) -> requests.Response:
    headers, body = to_binary(event)
    if token is not None:
        headers[TOKEN_HEADER] = token
    return requests.post(url, headers=headers, data=body, timeout=30)


def dead_letters_of(conn: Conn, file_id: str) -> tuple[str, int, str | None]:
    row = conn.execute(
        "SELECT status, dead_letters, error FROM files WHERE id = %s", (file_id,)
    ).fetchone()
    assert row is not None
    return str(row["status"]), int(row["dead_letters"]), row["error"]


def status_of(conn: Conn, file_id: str) -> str:
    row = conn.execute("SELECT status FROM files WHERE id = %s", (file_id,)).fetchone()
    assert row is not None
    return str(row["status"])


def test_a_forged_dead_letter_changes_nothing_and_the_brokers_own_goes_through(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF)
    process = f"http://127.0.0.1:{pipe.process_port}/"

    for token in (None, "not-the-token-at-all", EVENT_TOKEN[:-1]):
        refused = post(process, dead_letter(upload), token)
        assert refused.status_code == 401, refused.text
        assert refused.headers["Content-Type"] == "application/problem+json"
    assert dead_letters_of(conn, upload["id"]) == ("PENDING", 0, None)

    accepted = post(process, dead_letter(upload), EVENT_TOKEN)
    assert accepted.status_code == 200, accepted.text
    # a dead letter of a retriable status (500) is counted, its cause kept, the file left to
    # reconcile: the token is what stopped the forgeries
    assert dead_letters_of(conn, upload["id"]) == ("PENDING", 1, "forged")


def test_a_forged_ping_is_refused(pipe: Pipeline) -> None:
    ping = CloudEvent({"type": "dev.knative.sources.ping", "source": "/forged"}, {})
    assert post(f"http://127.0.0.1:{pipe.process_port}/", ping, None).status_code == 401


def test_the_brokers_deliveries_carry_the_token(
    pipe: Pipeline, presign: FlaskClient, api_key: str, conn: Conn
) -> None:
    upload = request_upload(presign, api_key, PDF)
    put(upload, PDF)
    wait_until(
        lambda: status_of(conn, upload["id"]) == "PROCESSED",
        timeout=30,
        what="the broker to deliver the notification to the guarded process function",
    )


@pytest.fixture
def guarded_notify(function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("FILEPIPE_EVENT_TOKEN", EVENT_TOKEN)
    return function_app("notify", "notify").test_client()


def test_notify_refuses_events_that_do_not_come_from_the_broker(
    guarded_notify: FlaskClient,
) -> None:
    event = CloudEvent(
        {"type": "file.processed", "source": "/forged", "subject": str(uuid.uuid4())},
        {"file_id": str(uuid.uuid4()), "tenant": "victim", "status": "PROCESSED", "version": 4},
    )
    headers, body = to_binary(event)
    refused = guarded_notify.post("/", headers=headers, data=body)
    assert refused.status_code == 401
    assert json.loads(refused.get_data())["status"] == 401
    ping = CloudEvent({"type": "dev.knative.sources.ping", "source": "/forged"}, {})
    headers, body = to_binary(ping)
    answer = guarded_notify.post("/", headers={**headers, TOKEN_HEADER: EVENT_TOKEN}, data=body)
    assert answer.status_code == 200


def test_the_webhooks_api_is_not_guarded_by_the_event_token(
    function_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILEPIPE_EVENT_TOKEN", EVENT_TOKEN)
    api = function_app("notify", "webhooks").test_client()
    assert api.get("/webhooks").status_code == 401, "API keys, not the broker's token"
    assert api.get("/openapi.json").status_code == 200
