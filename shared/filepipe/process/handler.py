"""Routing of the CloudEvents the process function receives, and what the broker is answered.

- ``dev.knative.rabbitmq.event`` (MinIO notification via RabbitmqSource): verify the objects;
- the same with a ``knativeerrorcode`` extension (from the dead-letter sink): ``dead_letters``;
- ``dev.knative.sources.ping`` (PingSource): reconcile.

A malformed notification is logged and acknowledged: retrying cannot fix it. A transient cause
(a dependency down) answers 503 problem+json whose ``detail`` names it, so the broker retries
and a dead letter's ``knativeerrordata`` carries the real cause to ``dead_letters``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from cloudevents.http import CloudEvent
from redis.exceptions import RedisError

from filepipe import logs, runtime
from filepipe.errors import DependencyError, ServiceUnavailable
from filepipe.events import PING
from filepipe.process.bucket_events import RABBITMQ_EVENT, InvalidNotification, parse_notification
from filepipe.process.dead_letters import dead_letter_of, record_dead_letter
from filepipe.process.reconcile import reconcile
from filepipe.process.verify import process_notification
from filepipe.web.problems import is_outage

log = logging.getLogger(__name__)

_DEPENDENCIES: tuple[tuple[type[BaseException], str], ...] = (
    (psycopg.Error, "PostgreSQL"),
    (RedisError, "Redis"),
    (BotoCoreError, "storage"),
    (ClientError, "storage"),
)
MAX_CAUSE = 500
_TRANSIENT_CANDIDATES = (DependencyError, psycopg.Error, RedisError, BotoCoreError, ClientError)
"""What may be a transient cause (``is_outage`` decides; a ClientError, say, only when 5xx)."""


@logs.bound()
def handle(event: CloudEvent) -> None:
    """Route one CloudEvent (its log records share one scope)."""
    with causes_named():
        _route(event)


def _route(event: CloudEvent) -> None:
    rt = runtime.current()
    event_type = event["type"]
    if event_type == PING:
        reconcile(rt)
        return
    if event_type != RABBITMQ_EVENT:
        log.warning("ignored event", extra={"type": event_type, "id": event["id"]})
        return
    try:
        records = parse_notification(event.get_data())
    except InvalidNotification as exc:
        log.error(
            "malformed notification acknowledged", extra={"id": event["id"], "error": str(exc)}
        )
        return
    dead = dead_letter_of(event)
    for record in records:
        if dead is not None:
            record_dead_letter(rt, record, dead)
        else:
            process_notification(rt, record)


@contextmanager
def causes_named() -> Iterator[None]:
    """Turn a dependency's failure into a 503 whose detail is the real cause (redacted)."""
    try:
        yield
    except _TRANSIENT_CANDIDATES as exc:
        if not is_outage(exc):
            raise
        cause = describe(exc)
        log.warning("transient failure; the broker retries", extra={"cause": cause})
        raise ServiceUnavailable(cause) from exc


def describe(exc: BaseException) -> str:
    """What failed, for an operator: our own message, or the dependency and its driver's error.

    Cut to ``MAX_CAUSE`` characters, so the whole problem+json fits in the 768 bytes of a
    response body that Knative keeps in a dead letter's ``knativeerrordata``."""
    if isinstance(exc, DependencyError):
        cause = str(exc)
    else:
        service = next(name for kind, name in _DEPENDENCIES if isinstance(exc, kind))
        cause = f"{service} is unavailable: {type(exc).__name__}: {exc}"
    return logs.redact(" ".join(cause.split()))[:MAX_CAUSE]
