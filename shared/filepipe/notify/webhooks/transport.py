"""One webhook delivery attempt: SSRF check, pinned connection, POST, outcome.

The URL goes through ``ssrf.guard`` again on every attempt (registration-time checks age: DNS
changes), and the connection is made to the checked IP address itself (a urllib3 pool for that
IP, with the URL's host in the ``Host`` header and, for https, as TLS SNI and the certificate
name to verify), so the name is resolved exactly once, by the guard (no rebinding between check
and connect). Redirects are never followed (a 3xx is a failed attempt), no proxy from the
environment is used, and the response body is not read. The timeout bounds the connection and
each read. An ``Outcome``'s error, which goes to the delivery log the tenant reads and to the
logs, describes what failed ("connection refused", "TLS: certificate verify failed") and never
carries the address connected to (the client library's own messages name it). Standard Webhooks
spec:
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass

import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

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
    """POST ``body`` to ``url`` if the SSRF guard lets it through; never raises."""
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
        status = _send(target, addresses[0], body, headers, timeout)
    except (HTTPError, OSError) as exc:
        # urllib3's NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError.
        timed_out = isinstance(exc, ReadTimeoutError) or (
            isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError)
        )
        error = f"timed out after {timeout:g} s" if timed_out else describe(exc)
        return Outcome(None, elapsed(), error)
    if 300 <= status < 400:
        return Outcome(status, elapsed(), "redirect not followed")
    return Outcome(status, elapsed(), None if 200 <= status < 300 else f"HTTP {status}")


def describe(exc: BaseException) -> str:
    """What a failed connection or exchange did, in words that name no address."""
    chain = _chain(exc)
    tls = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if tls is not None or any(isinstance(e, SSLError) for e in chain):
        verify = getattr(tls, "verify_message", None)
        reason = getattr(tls, "reason", None)
        detail = verify or (reason.replace("_", " ").lower() if reason else "handshake failed")
        return f"TLS: {detail}"[:200]
    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain):
        return "timed out"
    code = next((e.errno for e in chain if isinstance(e, OSError) and e.errno), None)
    if code is not None:
        return f"connection failed: {os.strerror(code).lower()}"
    if any(isinstance(e, ProtocolError) for e in chain):
        return "connection closed before an answer"
    return f"connection failed ({type(exc).__name__})"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the errors urllib3 wraps in ``args``."""
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
    timeout: float,
) -> int:
    pool: urllib3.HTTPConnectionPool
    limits = urllib3.Timeout(connect=timeout, read=timeout)
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            str(address),
            target.port,
            timeout=limits,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=DEFAULT_CA_BUNDLE_PATH,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(str(address), target.port, timeout=limits, retries=False)
    with pool:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            assert_same_host=False,
            preload_content=False,
        )
        try:
            return int(response.status)
        finally:
            response.close()
