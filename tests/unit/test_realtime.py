"""filepipe.realtime: channel names, and publishing never raises (real time is best-effort)."""

from __future__ import annotations

import logging

import pytest
import redis
from cloudevents.http import CloudEvent

from filepipe.notify import realtime
from tests.support.waiting import free_port


def test_channel_round_trip() -> None:
    assert realtime.channel("acme") == "filepipe:events:acme"
    assert realtime.tenant_of(b"filepipe:events:acme") == "acme"
    assert realtime.tenant_of("filepipe:events:") is None
    assert realtime.tenant_of("other:acme") is None


def _event(data: object) -> CloudEvent:
    return CloudEvent({"type": "file.processed", "source": "/filepipe/process"}, data)


def test_publish_with_redis_down_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis(port=free_port(), socket_connect_timeout=1)
    with caplog.at_level(logging.WARNING, "filepipe.notify.realtime"):
        realtime.publish(client, _event({"tenant": "acme", "file_id": "x"}))
    client.close()
    assert "Redis unavailable" in caplog.text


@pytest.mark.parametrize("data", [None, {"file_id": "x"}, {"tenant": ""}, "text"])
def test_events_without_a_tenant_are_dropped(
    data: object, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis(port=free_port())  # never contacted
    with caplog.at_level(logging.WARNING, "filepipe.notify.realtime"):
        realtime.publish(client, _event(data))
    client.close()
    assert "without a tenant" in caplog.text


def test_unserialisable_events_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis(port=free_port())  # never contacted
    with caplog.at_level(logging.WARNING, "filepipe.notify.realtime"):
        realtime.publish(client, _event({"tenant": "acme", "when": object()}))
    client.close()
    assert "not serialisable" in caplog.text
