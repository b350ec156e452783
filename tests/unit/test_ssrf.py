"""The webhook SSRF guard: URL forms, ports and address classes refused or allowed, and refusals
that never name the address (no network)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from filepipe.notify.webhooks import ssrf
from filepipe.notify.webhooks.errors import HostNotFound, UnsafeURL


def no_dns(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    raise AssertionError("an IP literal must not be resolved")


def answers(*addresses: str) -> ssrf.Resolver:
    """A resolver that answers every name with ``addresses``."""

    def resolve(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.9.9.9/",
        "http://[::1]:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fec0::1]/",
        "http://[feff:ffff::1]/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0x7f.1/",
        "http://167772161/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[2002:7f00:1::]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2001:db8::1]/",
    ],
)
def test_non_public_addresses_are_refused_without_dns(url: str) -> None:
    with pytest.raises(UnsafeURL):
        ssrf.guard(url, resolver=no_dns)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8080/", True),
        ("http://127.3.2.1/", True),
        ("http://[::1]/", True),
        ("http://2130706433/", True),
        ("http://[::ffff:127.0.0.1]/", True),
        ("http://10.0.0.1/", False),
        ("http://169.254.169.254/", False),
        ("http://[::ffff:10.0.0.1]/", False),
        ("http://[2002:7f00:1::]/", False),
        ("http://0.0.0.0/", False),
        ("http://192.168.0.1/", False),
    ],
)
def test_allow_loopback_admits_loopback_and_nothing_else(url: str, allowed: bool) -> None:
    ports = ((80, 80), (8080, 8080))
    if allowed:
        _, [address] = ssrf.guard(url, allow_loopback=True, ports=ports, resolver=no_dns)
        assert (address.is_loopback and address.version == 4) or str(address) == "::1"
    else:
        with pytest.raises(UnsafeURL):
            ssrf.guard(url, allow_loopback=True, ports=ports, resolver=no_dns)


@pytest.mark.parametrize(
    ("url", "ports", "allowed"),
    [
        ("https://hooks.example.com/", ssrf.ALLOWED_PORTS, True),
        ("http://hooks.example.com/", ssrf.ALLOWED_PORTS, True),
        ("https://hooks.example.com:443/", ssrf.ALLOWED_PORTS, True),
        ("http://hooks.example.com:443/", ssrf.ALLOWED_PORTS, True),
        ("https://hooks.example.com:80/", ssrf.ALLOWED_PORTS, True),
        ("https://hooks.example.com:8443/", ssrf.ALLOWED_PORTS, False),
        ("http://hooks.example.com:25/", ssrf.ALLOWED_PORTS, False),
        ("http://hooks.example.com:22/", ssrf.ALLOWED_PORTS, False),
        ("http://hooks.example.com:6379/", ssrf.ALLOWED_PORTS, False),
        ("http://hooks.example.com:8000/", ((443, 443), (8000, 8999)), True),
        ("http://hooks.example.com:8999/", ((443, 443), (8000, 8999)), True),
        ("http://hooks.example.com:9000/", ((443, 443), (8000, 8999)), False),
        ("https://hooks.example.com/", ((8000, 8999),), False),
    ],
)
def test_only_the_allowed_ports_are_reached(
    url: str, ports: ssrf.PortRanges, allowed: bool
) -> None:
    def resolve_never_asked_for_a_refused_port(host: str, port: int, **kwargs: Any) -> Any:
        assert allowed, "a refused port is refused before any DNS lookup"
        return answers("93.184.215.14")(host, port)

    if allowed:
        ssrf.guard(url, ports=ports, resolver=resolve_never_asked_for_a_refused_port)
    else:
        with pytest.raises(UnsafeURL, match=r"port \d+ is not allowed; webhooks may use"):
            ssrf.guard(url, ports=ports, resolver=resolve_never_asked_for_a_refused_port)


@pytest.mark.parametrize(
    ("resolved", "kind"),
    [
        ("10.1.2.3", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("169.254.169.254", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("fd12:3456::1", "a private address"),
        ("::ffff:192.168.7.7", "a private address"),
        ("2002:a01:203::1", "an IPv6 address embedding a private IPv4 address"),
        ("100.64.3.4", "a non-global address"),
    ],
)
def test_a_refusal_names_the_kind_of_address_never_the_address(resolved: str, kind: str) -> None:
    with pytest.raises(UnsafeURL) as refused:
        ssrf.guard("https://internal.example.com/hook", resolver=answers(resolved))
    message = str(refused.value)
    assert message == f"the URL's host resolves to {kind}; webhooks may only reach public ones"
    for shown in {resolved, str(ipaddress.ip_address(resolved)), "10.1.2.3", "192.168.7.7"}:
        assert shown not in message


def test_a_literal_is_said_to_be_of_its_kind() -> None:
    with pytest.raises(UnsafeURL, match=r"^the URL.s host is a loopback address;"):
        ssrf.guard("http://2130706433/", resolver=no_dns)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "//example.com/",
        "http://",
        "http://user:pass@example.com/",
        "http://example.com@127.0.0.1/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://example.com\\@127.0.0.1/",
        "http://ex\u00e4mple.com/",
        "http://-bad-.com/",
        "http://1.2.3.4.5/",
        "http://example.123/",
        "http://[fe80::1%25eth0]/",
        "http://example.com/" + "a" * 2048,
        42,
        "",
    ],
)
def test_malformed_or_foreign_urls_are_refused(url: object) -> None:
    with pytest.raises(UnsafeURL):
        ssrf.guard(url, allow_loopback=True, resolver=answers("93.184.215.14"))


def test_a_public_name_resolves_to_its_checked_addresses() -> None:
    target, addresses = ssrf.guard(
        "https://Hooks.Example.com/in?x=1#frag", resolver=answers("93.184.215.14", "2606:4700::1")
    )
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        443,
        "/in?x=1",
    )
    assert target.host_header == "Hooks.Example.com"
    assert addresses == [
        ipaddress.ip_address("93.184.215.14"),
        ipaddress.ip_address("2606:4700::1"),
    ]


@pytest.mark.parametrize(
    "resolved",
    [("127.0.0.1",), ("93.184.215.14", "10.1.2.3"), ("::ffff:192.168.0.1",), ("fe80::1%eth0",)],
)
def test_a_name_is_refused_if_any_of_its_addresses_is(resolved: tuple[str, ...]) -> None:
    with pytest.raises(UnsafeURL):
        ssrf.guard("https://rebind.example.com/", resolver=answers(*resolved))


def test_localhost_is_refused_through_the_real_resolver() -> None:
    with pytest.raises(UnsafeURL, match="loopback"):
        ssrf.guard("http://localhost/")


def test_a_name_that_does_not_resolve_is_not_found() -> None:
    def nxdomain(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(HostNotFound, match=r"^cannot resolve nowhere\.example\.com: Name or servi"):
        ssrf.guard("https://nowhere.example.com/", resolver=nxdomain)
