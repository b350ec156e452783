"""One webhook attempt against real local servers: one deadline for the whole exchange (a
receiver that trickles is cut, in the TLS handshake as after it), TLS verified against the
URL's host name, and answers described without the address."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from filepipe.notify.webhooks import transport

ANY_PORT = ((1, 65535),)
DEADLINE = 0.5

Serve = Callable[[socket.socket], None]


@contextmanager
def server(serve: Serve, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A TCP server on 127.0.0.1 that hands each connection (TLS-wrapped, handshake done, if
    ``tls``) to ``serve`` in a thread of its own; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stopping = threading.Event()

    def handle(accepted: socket.socket) -> None:
        try:
            secured = accepted if tls is None else tls.wrap_socket(accepted, server_side=True)
            with secured:
                serve(secured)
        except OSError:
            pass  # the client hung up, or refused our certificate
        finally:
            accepted.close()  # if not taken over by TLS

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        thread.join(5)
        listener.close()


def read_request(connection: socket.socket) -> None:
    """Read the request's head and body (closing with unread bytes would reset the connection,
    and with it the answer)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            return
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk


def answer_204(connection: socket.socket) -> None:
    read_request(connection)
    connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")


def trickle(connection: socket.socket) -> None:
    """Read the request, then send a status line and headers a byte every 50 ms for 10 s."""
    read_request(connection)
    for byte in (b"HTTP/1.1 200 OK\r\nX-Padding: " + b"." * 200)[:200]:
        connection.sendall(bytes([byte]))
        time.sleep(0.05)  # the trickle's pace, not synchronisation


def stay_silent(connection: socket.socket) -> None:
    """Read what comes (a request, a TLS hello) and say nothing until the client hangs up."""
    connection.settimeout(10)
    while connection.recv(65536):
        pass


def post(url: str) -> transport.Outcome:
    return transport.post(
        url, b"{}", {"content-type": "application/json"}, timeout=DEADLINE,
        allow_loopback=True, ports=ANY_PORT,
    )  # fmt: skip


def test_an_answer_in_time_is_its_status() -> None:
    with server(answer_204) as port:
        outcome = post(f"http://127.0.0.1:{port}/hook")
    assert (outcome.status_code, outcome.error, outcome.succeeded) == (204, None, True)


@pytest.mark.parametrize("serve", [trickle, stay_silent], ids=["trickling", "silent"])
def test_a_receiver_too_slow_is_cut_at_the_deadline(serve: Serve) -> None:
    with server(serve) as port:
        started = time.monotonic()
        outcome = post(f"http://127.0.0.1:{port}/hook")
        took = time.monotonic() - started
    assert (outcome.status_code, outcome.error) == (None, f"timed out after {DEADLINE:g} s")
    assert DEADLINE <= took < DEADLINE + 0.5
    assert DEADLINE * 1000 <= outcome.duration_ms < (DEADLINE + 0.5) * 1000


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``localhost`` and 127.0.0.1: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def test_tls_is_verified_against_the_url_host(
    certificate: tuple[Path, Path],
    tls_server_context: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    monkeypatch.setattr(transport, "_tls_context", lambda: trusting)
    with server(answer_204, tls_server_context) as port:
        outcome = post(f"https://localhost:{port}/hook")
    assert (outcome.status_code, outcome.error) == (204, None)


def test_an_untrusted_certificate_is_a_failed_attempt(
    tls_server_context: ssl.SSLContext,
) -> None:
    with server(answer_204, tls_server_context) as port:
        outcome = post(f"https://localhost:{port}/hook")
    assert outcome.status_code is None
    assert outcome.error is not None and outcome.error.startswith("TLS: ")
    assert "127.0.0.1" not in outcome.error


def test_a_silent_tls_server_is_cut_at_the_deadline() -> None:
    with server(stay_silent) as port:  # no TLS on its side: the client's handshake waits
        outcome = post(f"https://localhost:{port}/hook")
    assert outcome.error == f"timed out after {DEADLINE:g} s"
    assert outcome.duration_ms < (DEADLINE + 0.5) * 1000
