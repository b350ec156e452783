"""Helpers for broker tests: RabbitMQ utilities and the replay command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pika

from local.broker.config import Settings as BrokerSettings
from local.broker.manifests import load
from local.broker.topology import build
from tests.support.processes import ROOT, running

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@contextmanager
def amqp_channel(url: str = AMQP_URL) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def queue_depth(queue: str, url: str = AMQP_URL) -> int:
    """Ready messages in ``queue`` (which must exist)."""
    with amqp_channel(url) as channel:
        return int(channel.queue_declare(queue, passive=True).method.message_count)


def delete(queues: Iterable[str], exchanges: Iterable[str], url: str = AMQP_URL) -> None:
    """Remove what a test declared in RabbitMQ."""
    with amqp_channel(url) as channel:
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange)


def replay(env: Mapping[str, str], trigger: str) -> int:
    """Run ``python -m local.broker replay --trigger …``; returns how many it moved."""
    done = subprocess.run(
        [sys.executable, "-m", "local.broker", "replay", "--trigger", trigger],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout.strip().splitlines()[-1])


@contextmanager
def broker_emulator(
    env: Mapping[str, str],
    *,
    port: int,
    own_source_exchange: bool = False,
    output: Path | None = None,
) -> Iterator[str]:
    """Run ``python -m local.broker`` on the repository's manifests; yield its ingress URL.

    Afterwards its queues and broker exchange are deleted from RabbitMQ (and the source
    exchange, when the caller made it for this emulator alone).
    """
    settings = BrokerSettings.from_env(env)
    topology = build(load(ROOT / "knative" / "eventing"), settings)
    try:
        with running(["-m", "local.broker"], port=port, env=env, output=output):
            yield f"http://127.0.0.1:{port}/"
    finally:
        exchanges = list(topology.brokers.values())
        if own_source_exchange:
            exchanges.append(env["FILEPIPE_S3_NOTIFY_EXCHANGE"])
        delete(
            [
                *(name for t in topology.triggers for name in (t.queue, t.dlq)),
                *(s.queue for s in topology.sources),
            ],
            exchanges,
            env.get("FILEPIPE_AMQP_URL", AMQP_URL),
        )
