"""File locks against a real Redis: heartbeat, takeover of a dead holder's lock, a live holder's
lock left alone, a lost lease, an unreachable Redis."""

from __future__ import annotations

import time
import uuid

import pytest
from redis import Redis

from filepipe.config import Settings
from filepipe.locks import FileLock, LockBusy, LockLost, LockUnavailable
from tests.support.locks import lock_held_elsewhere, lock_key
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TTL = 1.5


@pytest.fixture
def file_id() -> str:
    return str(uuid.uuid4())


def renewals(redis: Redis, key: str, count: int) -> bool:
    """Whether the key's TTL went up ``count`` times (a heartbeat renewing it), watched live."""
    seen, last = 0, redis.pttl(key)
    deadline = time.monotonic() + count * TTL
    while seen < count and time.monotonic() < deadline:
        time.sleep(0.02)
        now = redis.pttl(key)
        seen += now > last
        last = now
    return seen >= count


def test_the_heartbeat_keeps_the_lock_past_its_ttl_until_released(
    redis: Redis, file_id: str
) -> None:
    with FileLock(redis, file_id, ttl=TTL) as lock:
        assert renewals(redis, lock_key(file_id), 3), "renewed every third of the TTL"
        lock.check()  # still ours
    assert redis.exists(lock_key(file_id)) == 0, "released on exit"


def test_a_killed_holders_lock_is_taken_over_within_about_a_ttl(
    redis: Redis, file_id: str, settings: Settings
) -> None:
    with lock_held_elsewhere(settings.redis_url, file_id, TTL) as holder:
        assert renewals(redis, lock_key(file_id), 1), "the holder's heartbeat runs"
        holder.kill()
        holder.wait(10)
        killed_at = time.monotonic()
        with FileLock(redis, file_id, ttl=TTL):
            took = time.monotonic() - killed_at
    assert took <= TTL + 0.5, f"took over after {took:.2f}s"


def test_a_live_holders_lock_is_not_stolen(redis: Redis, file_id: str) -> None:
    with FileLock(redis, file_id, ttl=TTL):
        owner = redis.get(lock_key(file_id))
        started = time.monotonic()
        with pytest.raises(LockBusy, match="being processed by another worker"):
            FileLock(redis, file_id, ttl=TTL).__enter__()
        waited = time.monotonic() - started
        assert redis.get(lock_key(file_id)) == owner
    assert waited <= TTL / 3 + 0.5, f"a renewal seen within a heartbeat ({waited:.2f}s)"


def test_a_lease_lost_stops_the_holder(redis: Redis, file_id: str) -> None:
    with FileLock(redis, file_id, ttl=TTL) as lock:
        redis.delete(lock_key(file_id))  # the lease ran out (a pause, a Redis failover)

        def lost() -> bool:
            try:
                lock.check()
            except LockLost:
                return True
            return False

        wait_until(lost, timeout=TTL, what="the heartbeat to find the lease gone")
        with pytest.raises(LockLost, match=f"lost the lock on file {file_id}"):
            lock.check()


def test_an_unreachable_redis_names_the_cause(closed_port_url: str, file_id: str) -> None:
    down = Redis.from_url(closed_port_url.replace("http://", "redis://"))
    with pytest.raises(LockUnavailable) as raised:
        FileLock(down, file_id, ttl=TTL).__enter__()
    message = str(raised.value)
    assert message.startswith(f"Redis is unavailable, cannot lock file {file_id}: ")
    assert "ConnectionError" in message and "Connection refused" in message
