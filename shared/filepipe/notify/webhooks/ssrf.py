"""SSRF guard for webhook URLs: what a receiver URL may be and which addresses it may reach.

The Standard Webhooks spec asks senders not to let webhooks reach internal networks (SSRF):
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

A URL is checked twice: when it is registered (``parse_url`` + ``resolve``) and again before every
delivery, where ``resolve`` runs anew and the connection goes to the very address it
checked (see ``transport.py``), so a DNS answer that changes between check and connect
(rebinding) cannot steer a delivery inside.

Refused: schemes other than http(s), credentials in the URL, hosts that are not DNS names or IP
literals, ports outside the allowed ones (``FILEPIPE_WEBHOOK_PORTS``, default 80 and 443), and
any address that is loopback, private, link-local, site-local (``fec0::/10``), multicast,
reserved, unspecified, shared (100.64.0.0/10) or otherwise not global, for IPv4 and IPv6 alike.
An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) is judged as the IPv4 address it reaches; IPv4
addresses embedded in 6to4, Teredo and NAT64 addresses are judged too. Numeric host forms that
resolvers read as IPv4 (``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``) are parsed
the way resolvers parse them. A host name is refused if any of its addresses is.
``allow_loopback`` (development only) lets 127.0.0.0/8 and ::1 through, nothing else.

A refusal says what kind of address the host is or resolves to ("resolves to a private
address"), never the address itself: neither the tenant (in a 400) nor the delivery log learns
what an internal name resolves to.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from filepipe.notify.webhooks.errors import HostNotFound, UnsafeURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]
"""``socket.getaddrinfo``'s signature; tests inject their own."""

PortRanges = tuple[tuple[int, int], ...]
"""Allowed TCP ports as inclusive ``(low, high)`` ranges (``Settings.webhook_port_ranges``)."""

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_PORTS: PortRanges = ((80, 80), (443, 443))
"""The ports webhooks may reach unless configured otherwise."""

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_HOSTNAME = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*\.?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_NUMERIC_HOST = re.compile(r"^[0-9a-fx.]+$")


@dataclass(frozen=True)
class Target:
    """A checked URL, split into what a connection needs."""

    url: str
    scheme: str
    host: str
    """Host name or IP literal, lower-case, without brackets."""
    port: int
    path: str
    """Path and query, as sent in the request line (at least ``/``)."""
    host_header: str
    literal: IPAddress | None
    """The address, if the host is an IP literal (numeric IPv4 forms included)."""


def parse_url(url: object) -> Target:
    """Check the form of a webhook URL (no DNS); raise ``UnsafeURL`` saying what is wrong."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("the URL must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURL(f"the URL must be at most {MAX_URL_LENGTH} characters")
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise UnsafeURL("the URL must be ASCII without spaces, controls or backslashes (punycode)")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # e.g. an unbalanced '[' or ']'
        raise UnsafeURL("the URL is malformed") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeURL("the URL scheme must be http or https")
    if "@" in parts.netloc:
        raise UnsafeURL("the URL must not carry credentials")
    host = (hostname or "").lower()
    if not host:
        raise UnsafeURL("the URL has no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL("the URL's port is not a number between 1 and 65535") from exc
    if port is None:
        port = DEFAULT_PORTS[scheme]
    elif port == 0:
        raise UnsafeURL("the URL's port is not a number between 1 and 65535")
    literal = _ip_literal(host, bracketed=parts.netloc.startswith("["))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, scheme, host, port, path, parts.netloc, literal)


def _ip_literal(host: str, *, bracketed: bool) -> IPAddress | None:
    if bracketed:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:  # zone ids ("%25eth0") land here too
            raise UnsafeURL("the URL's IPv6 address is invalid") from exc
    labels = host.rstrip(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # A host ending in a number is an IPv4 address in one of the forms inet_aton() reads
        # (WHATWG URL "ends in a number"); resolvers would read it so, hence so do we.
        if not _NUMERIC_HOST.fullmatch(host.rstrip(".")):
            raise UnsafeURL("the URL's host is neither a DNS name nor an IP address")
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
        except OSError as exc:
            raise UnsafeURL("the URL's IPv4 address is invalid") from exc
    if not _HOSTNAME.fullmatch(host) or len(host) > 253:
        raise UnsafeURL("the URL's host is not a valid DNS name")
    return None


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why a webhook may not reach ``address`` (``"a loopback address"``), or None if it may."""
    address = _unmapped(address)
    if allow_loopback and address.is_loopback:
        return None
    reason = _forbidden(address)
    if reason is not None:
        return f"{_article(reason)} {reason} address"
    embedded = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if embedded is not None and (inner := _forbidden(embedded)) is not None:
        return f"an IPv6 address embedding {_article(inner)} {inner} IPv4 address"
    return None


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) as the IPv4 address it reaches."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _forbidden(address: IPAddress) -> str | None:
    site_local = isinstance(address, ipaddress.IPv6Address) and address.is_site_local
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("site-local", site_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def resolve(
    target: Target, *, allow_loopback: bool = False, resolver: Resolver = socket.getaddrinfo
) -> list[IPAddress]:
    """Every address ``target`` resolves to, each checked; ``UnsafeURL`` if any is refused.

    ``HostNotFound`` if the name does not resolve (worth retrying later).
    """
    if target.literal is not None:
        return [_checked(target.literal, "is", allow_loopback=allow_loopback)]
    try:
        infos = resolver(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise HostNotFound(f"cannot resolve {target.host}: {_gai_reason(exc)}") from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        checked = _checked(address, "resolves to", allow_loopback=allow_loopback)
        if checked not in addresses:
            addresses.append(checked)
    if not addresses:
        raise HostNotFound(f"{target.host} has no address")
    return addresses


def _checked(address: IPAddress, verb: str, *, allow_loopback: bool) -> IPAddress:
    reason = refusal(address, allow_loopback=allow_loopback)
    if reason is not None:
        raise UnsafeURL(f"the URL's host {verb} {reason}; webhooks may only reach public ones")
    return _unmapped(address)


def _gai_reason(exc: BaseException) -> str:
    """The resolver's reason ("Name or service not known"), without any address."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def check_port(target: Target, ports: PortRanges = ALLOWED_PORTS) -> None:
    """``UnsafeURL`` unless ``target``'s port is one of ``ports``."""
    if not any(low <= target.port <= high for low, high in ports):
        allowed = ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ports)
        raise UnsafeURL(f"the URL's port {target.port} is not allowed; webhooks may use {allowed}")


def guard(
    url: object,
    *,
    allow_loopback: bool = False,
    ports: PortRanges = ALLOWED_PORTS,
    resolver: Resolver = socket.getaddrinfo,
) -> tuple[Target, list[IPAddress]]:
    """``parse_url``, ``check_port``, then ``resolve``: the target and the addresses to connect
    to, each checked."""
    target = parse_url(url)
    check_port(target, ports)
    return target, resolve(target, allow_loopback=allow_loopback, resolver=resolver)
