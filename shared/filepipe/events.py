"""CloudEvents 1.0 that filepipe emits: types, stable ids and binary-mode publishing to ``K_SINK``.

An event's id is derived from file id, version and type, so a re-emitted event keeps its id and
consumers dedupe on it. Events about files are written to the outbox first (``filepipe.files``)
and published after commit. Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from filepipe.errors import DependencyError

_EVENT_ID_NAMESPACE = uuid.UUID("5b0f3c8e-6d0a-4f4e-9a43-2f3a3f1c7e11")

FILE_CREATED = "file.created"
FILE_UPLOADED = "file.uploaded"
FILE_PROCESSED = "file.processed"
FILE_REJECTED = "file.rejected"
FILE_FAILED = "file.failed"
FILE_QUARANTINED = "file.quarantined"
FILE_CANCELLED = "file.cancelled"
FILE_DELETED = "file.deleted"
FILE_MISSING = "file.missing"
PING = "dev.knative.sources.ping"
"""The type of Knative PingSource events (the reconcile and webhook-retry timers)."""


NO_RESPONSE = 0
"""The status Knative records (``knativeerrorcode``) when a delivery got no HTTP response."""
_RETRIED_BELOW_500 = frozenset({404, 408, 409, 429})


def knative_retries(status: int) -> bool:
    """Whether Knative's ``SelectiveRetry`` (knative.dev/eventing/pkg/kncloudevents) retries a
    delivery answered ``status``: no response, 5xx, 404, 408, 409 and 429; a cause that may pass."""
    return status == NO_RESPONSE or status >= 500 or status in _RETRIED_BELOW_500


class PublishError(DependencyError):
    """The broker ingress did not accept an event."""


def event_id(file_id: uuid.UUID | str, version: int, event_type: str) -> str:
    """The stable id of the ``event_type`` event of ``file_id`` at ``version``."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{event_type}:{file_id}:{version}"))


@dataclass(frozen=True)
class Event:
    """An event as the outbox keeps it and the broker receives it."""

    id: str
    type: str
    source: str
    subject: str
    tenant: str
    file_id: uuid.UUID | None
    data: Mapping[str, Any]
    time: datetime
    traceparent: str | None = None

    def to_cloudevent(self) -> CloudEvent:
        attributes = {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "subject": self.subject,
            "time": self.time.isoformat(),
            "datacontenttype": "application/json",
        }
        if self.traceparent:
            attributes["traceparent"] = self.traceparent
        return CloudEvent(attributes, dict(self.data))


class Publisher:
    """POSTs CloudEvents in binary mode to the broker ingress (``K_SINK``).

    ``on_failure`` is called (it must not block) whenever an event is not accepted: the runtime
    wakes its republisher with it (``filepipe.files.republisher``).
    """

    def __init__(
        self,
        sink: str,
        *,
        timeout: float = 5.0,
        session: requests.Session | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self.sink = sink
        self.timeout = timeout
        self.session = session or requests.Session()
        self.on_failure = on_failure

    def publish(self, event: Event) -> None:
        try:
            self._post(event)
        except PublishError:
            if self.on_failure is not None:
                self.on_failure()
            raise

    def _post(self, event: Event) -> None:
        headers, body = to_binary(event.to_cloudevent())
        try:
            response = self.session.post(
                self.sink, headers=headers, data=body, timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise PublishError(f"cannot reach the broker at {self.sink}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise PublishError(f"the broker refused event {event.id}: HTTP {response.status_code}")
