"""HTTP delivery of one CloudEvent with Knative's retry rules.

The event is POSTed in binary content mode with ``Prefer: reply``. A 2xx is success. Knative's
``SelectiveRetry`` (``filepipe.events.knative_retries``) decides what is retried: no response
(connection error, timeout), 5xx, 404, 408, 409 and 429; any other status fails at once. Retries
wait ``backoffDelay * 2^n`` (exponential) or ``backoffDelay * n`` (linear), scaled by
``FILEPIPE_BROKER_BACKOFF_SCALE``.

``Sender.send`` waits between attempts in the calling thread (sources and ping timers, which own
their thread; waits end early when the emulator stops). ``Attempts.deliver`` follows the same
rules without waiting in a delivery thread: a failed attempt hands the next one to the
``Timers`` thread and returns, so one event's retries never hold a Trigger's delivery slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial

import requests

from filepipe.events import NO_RESPONSE, knative_retries
from filepipe.web.senders import TOKEN_HEADER
from local.broker.durations import backoff_delays
from local.broker.envelope import Envelope
from local.broker.manifests import DeliverySpec
from local.broker.timers import Timers

log = logging.getLogger(__name__)

retriable = knative_retries


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
    """POSTs envelopes with retries; safe to share between threads.

    Each thread keeps its own ``requests.Session`` (sessions are not thread-safe), so its
    deliveries reuse kept-alive connections instead of opening one per event."""

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
        self._sessions = threading.local()

    def delays(self, delivery: DeliverySpec) -> list[float]:
        """Seconds to wait before each retry ``delivery`` allows (scaled)."""
        return backoff_delays(
            delivery.retry, delivery.backoff_policy, delivery.backoff_delay, self._scale
        )

    def send(self, envelope: Envelope, url: str, delivery: DeliverySpec) -> Outcome:
        """Deliver ``envelope`` to ``url`` following ``delivery``'s retry policy."""
        delays = self.delays(delivery)
        timeout = delivery.timeout
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
            reply = self._session().post(
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

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session


Done = Callable[[Outcome], None]
"""Told the final outcome of a delivery (or that it was interrupted), exactly once."""


@dataclass(frozen=True)
class _Delivery:
    envelope: Envelope
    url: str
    timeout: float | None
    delays: list[float]
    done: Done
    live: Callable[[], bool]
    """False once the message can no longer be settled (its channel closed): stop trying."""


class Attempts:
    """Delivers with Knative's retry rules, waiting between attempts in ``timers``, not a slot.

    Every attempt runs in ``slots`` (the Trigger's pool, one thread per parallel delivery);
    the first one in the caller's thread, which is already a slot.
    """

    def __init__(self, sender: Sender, slots: Executor, timers: Timers) -> None:
        self._sender = sender
        self._slots = slots
        self._timers = timers

    def deliver(
        self,
        envelope: Envelope,
        url: str,
        delivery: DeliverySpec,
        done: Done,
        live: Callable[[], bool],
    ) -> None:
        """Attempt now; ``done`` runs once the outcome is final or the retries were cancelled."""
        plan = _Delivery(envelope, url, delivery.timeout, self._sender.delays(delivery), done, live)
        self._attempt(plan, 1)

    def _attempt(self, plan: _Delivery, number: int) -> None:
        if not plan.live():
            lost = Response(NO_RESPONSE, error="the message's channel closed")
            plan.done(Outcome(lost, number - 1, interrupted=True))
            return
        response = self._sender.post(plan.envelope, plan.url, plan.timeout)
        if response.ok or not retriable(response.status) or number > len(plan.delays):
            plan.done(Outcome(response, number))
            return
        log.debug(
            "attempt %d of %s to %s: %s", number, plan.envelope.id, plan.url, response.describe()
        )
        cancelled = partial(plan.done, Outcome(response, number, interrupted=True))
        retry = partial(self._slots.submit, self._attempt, plan, number + 1)
        if not self._timers.schedule(plan.delays[number - 1], retry, cancelled):
            cancelled()
