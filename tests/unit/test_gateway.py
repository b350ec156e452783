"""The pure parts of the WebSocket gateway: request parsing, refusals and the fan-out hub."""

from __future__ import annotations

import json
import uuid

import pytest
from websockets.datastructures import Headers

from filepipe.config import Settings
from filepipe.errors import BadRequest, ConfigError, Unauthorized
from filepipe.notify.gateway import handshake
from filepipe.notify.gateway.hub import Hub, RecentIds, Subscriber, file_id_of

KEY = "fpk_" + "a" * 43


def test_token_from_query_or_bearer_header() -> None:
    assert handshake.parse(f"/ws?token={KEY}", Headers()).token == KEY
    from_header = handshake.parse("/ws?token=ignored", Headers(Authorization=f"Bearer {KEY}"))
    assert from_header.token == KEY


@pytest.mark.parametrize(
    ("target", "headers"),
    [("/ws", {}), ("/ws?token=", {}), ("/ws", {"Authorization": "Basic abc"})],
)
def test_missing_or_malformed_credentials(target: str, headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        handshake.parse(target, Headers(headers))


def test_file_id_is_normalised_or_refused() -> None:
    file_id = uuid.uuid4()
    parsed = handshake.parse(f"/ws?token={KEY}&file_id={str(file_id).upper()}", Headers())
    assert parsed.file_id == str(file_id)
    assert handshake.parse(f"/ws?token={KEY}", Headers()).file_id is None
    for bad in ("file_id=nope", "file_id=", f"file_id={file_id}&file_id={file_id}"):
        with pytest.raises(BadRequest):
            handshake.parse(f"/ws?token={KEY}&{bad}", Headers())


def test_problem_response() -> None:
    response = handshake.problem_response(Unauthorized("invalid API key"), "/ws")
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert json.loads(response.body) == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": "invalid API key",
        "instance": "/ws",
    }


def _message(tenant: str, file_id: uuid.UUID) -> str:
    return json.dumps(
        {"specversion": "1.0", "subject": str(file_id), "data": {"tenant": tenant}},
    )


def test_hub_delivers_by_tenant_and_file() -> None:
    hub = Hub()
    wanted = uuid.uuid4()
    everything = Subscriber("acme", None, queue_size=8)
    one_file = Subscriber("acme", str(wanted), queue_size=8)
    other = Subscriber("globex", None, queue_size=8)
    for subscriber in (everything, one_file, other):
        hub.add(subscriber)
    assert hub.dispatch("acme", _message("acme", uuid.uuid4())) == 1
    assert hub.dispatch("acme", _message("acme", wanted)) == 2
    assert hub.dispatch("initech", _message("initech", wanted)) == 0
    assert everything.queue.qsize() == 2
    assert one_file.queue.qsize() == 1
    assert other.queue.empty()


def test_hub_drops_a_client_whose_queue_is_full() -> None:
    hub = Hub()
    slow, fast = Subscriber("acme", None, queue_size=2), Subscriber("acme", None, queue_size=8)
    hub.add(slow)
    hub.add(fast)
    for _ in range(3):
        hub.dispatch("acme", _message("acme", uuid.uuid4()))
    assert slow.overflowed.is_set()
    assert not fast.overflowed.is_set()
    assert fast.queue.qsize() == 3
    assert len(hub) == 1


def test_hub_forgets_closed_and_removed_clients() -> None:
    hub = Hub()
    closed = Subscriber("acme", None, queue_size=2, is_gone=lambda: True)
    leaving = Subscriber("acme", None, queue_size=2)
    hub.add(closed)
    hub.add(leaving)
    hub.discard(leaving)
    hub.discard(leaving)
    assert hub.dispatch("acme", _message("acme", uuid.uuid4())) == 0
    assert len(hub) == 0


def test_file_id_of() -> None:
    file_id = uuid.uuid4()
    assert file_id_of({"data": {"file_id": str(file_id).upper()}}) == str(file_id)
    assert file_id_of({"subject": str(file_id), "data": "x"}) == str(file_id)
    assert file_id_of({"subject": "nope"}) is None
    assert file_id_of({}) is None


@pytest.mark.parametrize("message", ["not json", "[]"])
def test_a_client_of_one_file_gets_no_unreadable_message(message: str) -> None:
    hub = Hub()
    hub.add(Subscriber("acme", str(uuid.uuid4()), queue_size=2))
    assert hub.dispatch("acme", message) == 0


def test_hub_hands_out_each_event_id_once() -> None:
    hub = Hub(RecentIds(size=2))
    client = Subscriber("acme", None, queue_size=8)
    hub.add(client)
    first, second, third = (
        json.dumps({"id": str(uuid.uuid4()), "data": {"tenant": "acme"}}) for _ in range(3)
    )
    handed = [hub.dispatch("acme", message) for message in (first, first, second, first)]
    assert handed == [1, 0, 1, 0]
    hub.dispatch("acme", third)  # the oldest id (first) is forgotten
    assert hub.dispatch("acme", first) == 1
    assert client.queue.qsize() == 4


def test_queue_size_setting() -> None:
    assert Settings.from_env({}).gateway_queue_size == 100
    assert Settings.from_env({"FILEPIPE_GATEWAY_QUEUE_SIZE": "5"}).gateway_queue_size == 5
    with pytest.raises(ConfigError):
        Settings.from_env({"FILEPIPE_GATEWAY_QUEUE_SIZE": "0"})


def test_connection_cap_and_allowed_origins_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.gateway_max_connections_per_tenant, defaults.allowed_origins) == (20, ())
    settings = Settings.from_env(
        {
            "FILEPIPE_GATEWAY_MAX_CONNECTIONS_PER_TENANT": "5",
            "FILEPIPE_ALLOWED_ORIGINS": "https://app.example.com, http://localhost:8080,*",
        }
    )
    assert settings.gateway_max_connections_per_tenant == 5
    assert settings.allowed_origins == ("https://app.example.com", "http://localhost:8080", "*")
    for name, bad in [
        ("FILEPIPE_GATEWAY_MAX_CONNECTIONS_PER_TENANT", "0"),
        ("FILEPIPE_ALLOWED_ORIGINS", "https://app.example.com/"),
        ("FILEPIPE_ALLOWED_ORIGINS", "app.example.com"),
        ("FILEPIPE_ALLOWED_ORIGINS", "https://user@app.example.com"),
    ]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: bad})
