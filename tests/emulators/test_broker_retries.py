"""Retries of the broker emulator never hold a delivery thread (no head-of-line blocking).

Real emulator processes against RabbitMQ, with a real HTTP subscriber that fails the events whose
subject is ``stuck`` and accepts the others.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from cloudevents.conversion import to_binary

from tests.emulators.test_broker import cleanup, emulator_env, event
from tests.support.broker import queue_depth
from tests.support.processes import running
from tests.support.receiver import Receiver, Recorded, Reply, receiving
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

TRIGGER = "retrying"


def manifests(directory: Path, *, parallelism: int, retry: int, delay: str) -> None:
    service = "{apiVersion: serving.knative.dev/v1, kind: Service, name: notify}"
    (directory / "eventing.yaml").write_text(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\n"
        f"metadata: {{name: {TRIGGER}, annotations: "
        f'{{rabbitmq.eventing.knative.dev/parallelism: "{parallelism}"}}}}\n'
        "spec:\n  broker: default\n  filter: {attributes: {type: test.retrying}}\n"
        f"  subscriber: {{ref: {service}}}\n"
        f"  delivery: {{retry: {retry}, backoffPolicy: exponential, backoffDelay: {delay}}}\n"
    )


def fail_stuck(request: Recorded) -> Reply | None:
    return Reply(503, b"stuck") if request.ce("subject") == "stuck" else None


@contextmanager
def setup(
    tmp_path: Path, *, parallelism: int, retry: int, delay: str, **env: str
) -> Iterator[tuple[Receiver, dict[str, str], int, str]]:
    manifests(tmp_path, parallelism=parallelism, retry=retry, delay=delay)
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    port = free_port()
    with receiving() as receiver:
        receiver.answer("/notify", fail_stuck)
        environment = {
            **emulator_env(tmp_path, receiver, port, prefix),
            "FILEPIPE_PING_INTERVAL": "0",
            **env,
        }
        try:
            yield receiver, environment, port, prefix
        finally:
            cleanup(prefix, [TRIGGER])


def post(port: int, subject: str) -> str:
    sent = event("test.retrying", subject=subject)
    headers, body = to_binary(sent)
    answer = requests.post(f"http://127.0.0.1:{port}/", headers=headers, data=body, timeout=5)
    assert answer.status_code == 202, answer.text
    return str(sent["id"])


def attempted(receiver: Receiver, ids: list[str], count: int = 1) -> bool:
    return all(len(receiver.requests("/notify", id)) >= count for id in ids)


def test_failing_events_wait_for_their_retries_without_holding_up_the_others(
    tmp_path: Path,
) -> None:
    # retry 4, exponential, 0.5 s scaled by 0.4: waits of 0.4, 0.8, 1.6, 3.2 s (6 s in all)
    with setup(
        tmp_path, parallelism=2, retry=4, delay="PT0.5S", FILEPIPE_BROKER_BACKOFF_SCALE="0.4"
    ) as (receiver, env, port, prefix):
        with running(["-m", "local.broker"], port=port, env=env):
            stuck = [post(port, "stuck") for _ in range(4)]
            wait_until(lambda: attempted(receiver, stuck), what="the stuck events' first tries")
            started = time.monotonic()
            good = [post(port, "good") for _ in range(20)]
            wait_until(lambda: attempted(receiver, good), timeout=5, what="the good events")
            # With the two delivery threads sleeping through the stuck events' retries, the good
            # events would have waited about 12 s.
            assert time.monotonic() - started < 2.0
            assert all(len(receiver.requests("/notify", id)) == 1 for id in good)
            wait_until(
                lambda: queue_depth(f"{prefix}.{TRIGGER}.dlq") == 4,
                timeout=15,
                what="the stuck events in the DLQ",
            )
        for id in stuck:
            tries = receiver.requests("/notify", id)
            assert len(tries) == 5  # retry + 1
            gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
            for gap, wanted in zip(gaps, (0.4, 0.8, 1.6, 3.2), strict=True):
                assert wanted - 0.05 <= gap <= wanted + 1.0, (gaps, wanted)
        assert queue_depth(f"{prefix}.{TRIGGER}") == 0


def test_waiting_events_beyond_the_bound_stay_in_the_queue(tmp_path: Path) -> None:
    bounded = setup(tmp_path, parallelism=1, retry=3, delay="PT5S", FILEPIPE_BROKER_MAX_WAITING="2")
    with (
        bounded as (receiver, env, port, prefix),
        running(["-m", "local.broker"], port=port, env=env),
    ):
        stuck = [post(port, "stuck") for _ in range(5)]
        wait_until(lambda: attempted(receiver, stuck[:3]), what="three stuck events tried")
        # prefetch = parallelism 1 + 2 waiting: RabbitMQ holds the other two back
        wait_until(lambda: queue_depth(f"{prefix}.{TRIGGER}") == 2, what="two held back")
        tried = {r.ce("id") for r in receiver.requests("/notify")}
        assert tried == set(stuck[:3])


def test_waiting_events_survive_a_stop_and_a_kill(tmp_path: Path) -> None:
    # retry 5 with waits of 2, 4, 8… s: each event waits for its retry when the emulator stops
    with setup(
        tmp_path, parallelism=1, retry=5, delay="PT1S", FILEPIPE_BROKER_BACKOFF_SCALE="1"
    ) as (
        receiver,
        env,
        port,
        prefix,
    ):
        queue = f"{prefix}.{TRIGGER}"
        with running(["-m", "local.broker"], port=port, env=env) as first:
            stuck = [post(port, "stuck") for _ in range(3)]
            wait_until(lambda: attempted(receiver, stuck), what="every event tried once")
            os.killpg(first.pid, signal.SIGTERM)
            first.wait(10)
        assert first.returncode == 0
        assert queue_depth(queue) == 3  # returned to the queue, not dead-lettered

        with running(["-m", "local.broker"], port=port, env=env) as second:
            wait_until(lambda: attempted(receiver, stuck, 2), what="every event redelivered")
            os.killpg(second.pid, signal.SIGKILL)
            second.wait(10)
        wait_until(lambda: queue_depth(queue) == 3, what="RabbitMQ to requeue the unacked events")

        receiver.answer("/notify", lambda request: None)  # the subscriber recovers
        with running(["-m", "local.broker"], port=port, env=env):
            wait_until(lambda: attempted(receiver, stuck, 3), what="every event delivered")
            wait_until(lambda: queue_depth(queue) == 0, what="every event acknowledged")
        assert queue_depth(f"{queue}.dlq") == 0
