"""Reading a dead letter's ``knativeerror*`` extensions: the status and the real cause."""

from __future__ import annotations

import base64
import json

import pytest
from cloudevents.http import CloudEvent

from filepipe.process.dead_letters import DeadLetter, dead_letter_of


def event(**extensions: str) -> CloudEvent:
    attributes = {"type": "dev.knative.rabbitmq.event", "source": "/rabbitmq", **extensions}
    return CloudEvent(attributes, {"Records": []})


def b64(body: bytes) -> str:
    return base64.b64encode(body).decode()


def test_a_notification_without_the_extensions_is_no_dead_letter() -> None:
    assert dead_letter_of(event()) is None


@pytest.mark.parametrize(
    ("code", "data", "expected"),
    [
        (
            "503",
            b64(json.dumps({"status": 503, "detail": "Redis is unavailable: refused"}).encode()),
            DeadLetter(503, "Redis is unavailable: refused"),
        ),
        (
            "500",
            b64(b"<html>500 Internal Server Error</html>"),
            DeadLetter(500, "<html>500 Internal Server Error</html>"),
        ),
        ("0", "", DeadLetter(0, "no response")),
        ("429", "", DeadLetter(429, "HTTP 429")),
        ("400", "not base64 at all!", DeadLetter(400, "not base64 at all!")),
        ("x", "", DeadLetter(0, "no response")),
    ],
    ids=["problem-detail", "html-body", "no-response", "empty-body", "plain-text", "bad-code"],
)
def test_the_cause_is_the_problem_detail_or_else_the_body(
    code: str, data: str, expected: DeadLetter
) -> None:
    assert dead_letter_of(event(knativeerrorcode=code, knativeerrordata=data)) == expected


@pytest.mark.parametrize(
    ("status", "retriable"),
    [
        (0, True),
        (404, True),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (503, True),
        (400, False),
        (401, False),
        (413, False),
        (422, False),
    ],
)
def test_retriable_statuses_are_knatives_selective_retry(status: int, retriable: bool) -> None:
    assert DeadLetter(status, "cause").retriable is retriable


def test_a_long_cause_is_cut() -> None:
    dead = dead_letter_of(event(knativeerrorcode="503", knativeerrordata=b64(b"x" * 900)))
    assert dead is not None and len(dead.cause) == 500
