"""HTTP delivery of one CloudEvent with Knative's retry rules.

The event is POSTed in binary content mode with ``Prefer: reply``. A 2xx is success. Knative's
``SelectiveRetry`` (knative.dev/eventing/pkg/kncloudevents) decides what is retried: no response
(connection error, timeout), 5xx, 404, 408, 409 and 429; any other status fails at once. Retries
wait ``backoffDelay * 2^n`` (exponential) or ``backoffDelay * n`` (linear), scaled by
``FILEPIPE_BROKER_BACKOFF_SCALE``. Waits end early when the emulator stops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

import requests

from filepipe.web.senders import TOKEN_HEADER
from local.broker.durations import backoff_delays
from local.broker.envelope import Envelope
from local.broker.manifests import DeliverySpec

log = logging.getLogger(__name__)

RETRIABLE_STATUSES = frozenset({404, 408, 409, 429})
NO_RESPONSE = 0
"""The status recorded when no HTTP response arrived (Knative's ``knativeerrorcode`` then)."""


def retriable(status: int) -> bool:
    return status == NO_RESPONSE or status >= 500 or status in RETRIABLE_STATUSES


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        return self.error or f"HTTP {self.status}"


@dataclass(frozen=True)
class Outcome:
    response: Response
    """The last response (or the error that stood for it)."""
    attempts: int
    interrupted: bool = False
    """The emulator stopped while waiting to retry: the event was neither delivered nor failed."""

    @property
    def delivered(self) -> bool:
        return self.response.ok


class Sender:
    """POSTs envelopes with retries; safe to share between threads."""

    def __init__(
        self,
        *,
        timeout: float,
        backoff_scale: float,
        stop: threading.Event | None = None,
        event_token: str | None = None,
    ) -> None:
        self._timeout = timeout
        self._scale = backoff_scale
        self._stop = stop or threading.Event()
        self._sender_headers = {TOKEN_HEADER: event_token} if event_token else {}

    def send(self, envelope: Envelope, url: str, delivery: DeliverySpec) -> Outcome:
        """Deliver ``envelope`` to ``url`` following ``delivery``'s retry policy."""
        delays = backoff_delays(
            delivery.retry, delivery.backoff_policy, delivery.backoff_delay, self._scale
        )
        timeout = delivery.timeout or self._timeout
        response = self.post(envelope, url, timeout)
        attempts = 1
        for delay in delays:
            if response.ok or not retriable(response.status):
                break
            log.debug("attempt %d of %s to %s: %s", attempts, envelope.id, url, response.describe())
            if self._stop.wait(delay):
                return Outcome(response, attempts, interrupted=True)
            response = self.post(envelope, url, timeout)
            attempts += 1
        return Outcome(response, attempts)

    def post(self, envelope: Envelope, url: str, timeout: float | None = None) -> Response:
        """One POST of ``envelope`` in binary content mode."""
        headers = {**envelope.http_headers(), **self._sender_headers, "Prefer": "reply"}
        try:
            reply = requests.post(
                url,
                data=envelope.data,
                headers=headers,
                timeout=timeout or self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            return Response(NO_RESPONSE, error=f"{type(exc).__name__}: {exc}")
        with reply:
            return Response(reply.status_code, reply.content, dict(reply.headers))
