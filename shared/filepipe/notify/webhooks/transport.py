"""One webhook delivery attempt: SSRF check, pinned connection, POST, outcome, by a deadline.

The URL goes through ``ssrf.guard`` again on every attempt (registration-time checks age: DNS
changes), and the connection is made to the checked IP address itself (with the URL's host in the
``Host`` header and, for https, as TLS SNI and the certificate name to verify), so the name is
resolved exactly once, by the guard (no rebinding between check and connect). Redirects are never
followed (a 3xx is a failed attempt), no proxy from the environment is used, and the response
body is not read.

The timeout is one deadline for the whole attempt, not a bound on each socket operation: a
receiver that accepts the connection and then trickles its answer a byte at a time would keep a
per-read timeout from ever expiring. The connection is opened by ``_Exchange.connect``, which
keeps hold of the socket, and a timer shuts that socket down when the deadline passes, which
ends whatever the attempt is blocked in (connecting, the TLS handshake, sending the body,
reading the status line and headers). The name resolution in the guard counts against the
deadline but is not cut.

An ``Outcome``'s error, which goes to the delivery log the tenant reads and to the logs,
describes what failed ("connection refused", "TLS: certificate verify failed") and never carries
the address connected to (the library's own messages may name it). Standard Webhooks spec:
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from requests.utils import DEFAULT_CA_BUNDLE_PATH

from filepipe.notify.webhooks import ssrf
from filepipe.notify.webhooks.errors import HostNotFound, UnsafeURL

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one attempt did. ``retryable`` is False when trying again cannot help."""

    status_code: int | None
    duration_ms: int
    error: str | None = None
    retryable: bool = True
    counts_as_failure: bool = True
    """False when the receiver is not to blame (the attempt was not made): the endpoint's
    consecutive failures are not counted up."""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: the endpoint is to be disabled."""
        return self.status_code == 410


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,
    allow_loopback: bool = False,
    ports: ssrf.PortRanges = ssrf.ALLOWED_PORTS,
    resolver: ssrf.Resolver = socket.getaddrinfo,
) -> Outcome:
    """POST ``body`` to ``url`` if the SSRF guard lets it through, all within ``timeout``
    seconds; never raises."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        target, addresses = ssrf.guard(
            url, allow_loopback=allow_loopback, ports=ports, resolver=resolver
        )
    except UnsafeURL as exc:
        return Outcome(None, elapsed(), f"refused: {exc}", retryable=False)
    except HostNotFound as exc:
        return Outcome(None, elapsed(), str(exc))
    try:
        status = _send(target, addresses[0], body, headers, deadline=started + timeout)
    except (OSError, http.client.HTTPException) as exc:
        timed_out = isinstance(exc, TimeoutError)
        return Outcome(
            None, elapsed(), f"timed out after {timeout:g} s" if timed_out else describe(exc)
        )
    if 300 <= status < 400:
        return Outcome(status, elapsed(), "redirect not followed")
    return Outcome(status, elapsed(), None if 200 <= status < 300 else f"HTTP {status}")


def describe(exc: BaseException) -> str:
    """What a failed connection or exchange did, in words that name no address."""
    chain = _chain(exc)
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None:
        verify = getattr(tls, "verify_message", None)
        reason = getattr(tls, "reason", None)
        detail = verify or (reason.replace("_", " ").lower() if reason else "handshake failed")
        return f"TLS: {detail}"[:200]
    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain):
        return "timed out"
    code = next((e.errno for e in chain if isinstance(e, OSError) and e.errno), None)
    if code is not None:
        return f"connection failed: {os.strerror(code).lower()}"
    if any(
        isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead)) for e in chain
    ):
        return "connection closed before an answer"
    if any(isinstance(e, http.client.HTTPException) for e in chain):
        return "not a valid HTTP answer"
    return f"connection failed ({type(exc).__name__})"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the errors wrapped in ``args``."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 20:
        current = pending.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending.extend(e for e in linked if isinstance(e, BaseException))
    return seen


def _send(
    target: ssrf.Target,
    address: ssrf.IPAddress,
    body: bytes,
    headers: Mapping[str, str],
    *,
    deadline: float,
) -> int:
    """POST over a connection to ``address``; the status code. ``TimeoutError`` once the
    deadline (``time.monotonic()``) passes, whatever the exchange was doing."""
    exchange = _Exchange(target, address, deadline)
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), exchange.cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        exchange.request(
            "POST", target.path, body=body, headers={**headers, "Host": target.host_header}
        )
        with exchange.getresponse() as response:
            return int(response.status)
    except (OSError, http.client.HTTPException) as exc:
        if exchange.was_cut:
            raise TimeoutError("the attempt's deadline passed") from exc
        raise
    finally:
        watchdog.cancel()
        exchange.close()


class _Exchange(http.client.HTTPConnection):
    """One connection to the checked address (TLS for https) whose socket ``cut`` can shut
    down from another thread at any moment, from the TCP connect on."""

    def __init__(self, target: ssrf.Target, address: ssrf.IPAddress, deadline: float) -> None:
        super().__init__(str(address), target.port)
        self.target = target
        self.deadline = deadline
        self.was_cut = False
        self._lock = threading.Lock()
        self._held: socket.socket | None = None

    def connect(self) -> None:
        """Connect (and shake hands) within what is left of the deadline, cuttable throughout."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the attempt's deadline passed before connecting")
        sock = socket.create_connection((self.host, self.port), timeout=remaining)
        try:
            self._hold(sock)
            if self.target.scheme == "https":
                sock = _tls_context().wrap_socket(
                    sock, server_hostname=self.target.host, do_handshake_on_connect=False
                )
                self._hold(sock)
                sock.do_handshake()
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def cut(self) -> None:
        """The deadline passed: end the exchange, wherever it is."""
        with self._lock:
            self.was_cut = True
            if self._held is not None:
                with contextlib.suppress(OSError):  # already closed
                    # The plain socket's shutdown, also under TLS: the TLS object's own would
                    # drop its state under a thread that may be reading.
                    socket.socket.shutdown(self._held, socket.SHUT_RDWR)

    def _hold(self, sock: socket.socket) -> None:
        with self._lock:
            if self.was_cut:
                sock.close()
                raise TimeoutError("the attempt's deadline passed while connecting")
            self._held = sock


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Certificates verified against the CA bundle requests uses, host names checked."""
    return ssl.create_default_context(cafile=DEFAULT_CA_BUNDLE_PATH)
