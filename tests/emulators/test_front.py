"""``python -m local.front`` as a process, in front of real HTTP upstreams and a real WebSocket
server: routing as local/nginx.conf, requests and answers intact, bodies streamed, errors as
problem+json; the web page's files served, nothing else of their folder."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from websockets.sync.client import connect
from websockets.sync.server import ServerConnection, serve
from websockets.typing import Origin

from local.front import DEFAULT_UPSTREAMS, ROUTES, UPGRADES
from tests.support.processes import ROOT, peak_memory, running
from tests.support.waiting import free_port, wait_until

MIB = 1024 * 1024
BIG = 50 * MIB


class Upstream(ThreadingHTTPServer):
    """An HTTP/1.1 upstream in a thread: answers every request with what it received (JSON),
    ``GET …/big?size=N`` with N streamed bytes (1 MiB first, the rest once ``release`` is set)."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.receiving = threading.Event()
        """Set once a request body's first bytes arrived."""
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up are part of the tests."""

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def _serve(self) -> None:
        digest, length = hashlib.sha256(), 0
        for piece in self._body():
            self.server.receiving.set()
            digest.update(piece)
            length += len(piece)
        if "/big?size=" in self.path:
            self._stream(int(self.path.rsplit("size=", 1)[1]))
            return
        content = json.dumps(
            {
                "upstream": self.server.name,
                "method": self.command,
                "target": self.path,
                "version": self.request_version,
                "headers": [[key.lower(), value] for key, value in self.headers.items()],
                "length": length,
                "sha256": digest.hexdigest(),
            }
        ).encode()
        self.send_response(int(self.headers.get("X-Reply-Status") or 200))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Upstream", self.server.name)
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _body(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            piece = self.rfile.read(min(left, MIB))
            left -= len(piece)
            yield piece

    def _stream(self, size: int) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.write(bytes(MIB))
        self.wfile.flush()
        self.server.release.wait(10)
        for _ in range((size - MIB) // MIB):
            self.wfile.write(bytes(MIB))

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _echo(connection: ServerConnection) -> None:
    """The gateway stand-in: says what it was asked for, then echoes every message."""
    request = connection.request
    assert request is not None
    connection.send(
        json.dumps(
            {
                "path": request.path,
                "origin": request.headers.get("Origin"),
                "x-forwarded-for": request.headers.get("X-Forwarded-For"),
            }
        )
    )
    for message in connection:
        connection.send(message)


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    servers = {name: Upstream(name) for name in ("presign", "query", "webhooks")}
    yield servers
    for server in servers.values():
        server.close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with serve(_echo, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.socket.getsockname()[1]}"
        server.shutdown()
        thread.join()


@contextmanager
def front(
    tmp: Path, upstreams: dict[str, str], web: Path | None = None
) -> Iterator[tuple[str, int]]:
    """A front process routing to ``upstreams`` (the page from ``web``, else ``web/``); yields
    its base URL and pid."""
    port = free_port()
    flags = [arg for name, url in upstreams.items() for arg in ("--upstream", f"{name}={url}")]
    flags += ["--web", str(web)] if web is not None else []
    with running(
        ["-m", "local.front", "--port", str(port), *flags], port=port, output=tmp / "front.log"
    ) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


@pytest.fixture(scope="module")
def proxy(
    upstreams: dict[str, Upstream], gateway: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    urls = {name: server.url for name, server in upstreams.items()}
    with front(tmp_path_factory.mktemp("front"), {**urls, "gateway": gateway}) as started:
        yield started


@pytest.fixture
def base(proxy: tuple[str, int]) -> str:
    return proxy[0]


@pytest.mark.parametrize(
    ("method", "target", "upstream"),
    [
        ("POST", "/uploads", "presign"),
        ("POST", "/upload-tokens", "presign"),
        ("GET", "/s3/params?filename=a.pdf&type=application%2Fpdf&metadata[a]=1", "presign"),
        ("POST", "/s3/multipart/u-1/complete?key=k%2Fa.pdf", "presign"),
        ("GET", "/files?cursor=a%2Fb&limit=2&x=%20", "query"),
        ("GET", "/files/f-1/logs", "query"),
        ("PATCH", "/webhooks/w-1", "webhooks"),
        ("DELETE", "/webhooks/w-1", "webhooks"),
        ("GET", "/filesystem", "query"),  # nginx's `location /files` is a plain prefix too
        ("GET", "/uploads/../files/f-2", "query"),  # matched normalised, sent as it came
    ],
)
def test_each_route_reaches_its_upstream_intact(
    base: str, method: str, target: str, upstream: str
) -> None:
    content = b'{"filename": "a.pdf"}' if method in ("POST", "PATCH") else b""
    with closing(_connection(base, 10)) as conn:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for key, value in {
            "Host": "files.example:8080",
            "Authorization": "Bearer fp_key",
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",  # set by the front, not taken from the client
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "only for the front",
            "Keep-Alive": "timeout=5",
            "X-Reply-Status": "201",
            "Content-Length": str(len(content)),
        }.items():
            conn.putheader(key, value)
        conn.endheaders(content)
        response = conn.getresponse()
        answer = json.loads(response.read())

    assert response.status == 201
    assert response.getheader("X-Upstream") == upstream
    assert response.getheader("Connection") == "close"
    assert response.getheader("Keep-Alive") is None
    assert response.msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert answer["upstream"] == upstream
    assert (answer["method"], answer["target"], answer["version"]) == (method, target, "HTTP/1.1")
    assert answer["sha256"] == hashlib.sha256(content).hexdigest()
    headers = dict(answer["headers"])
    assert headers["host"] == "files.example:8080"
    assert headers["authorization"] == "Bearer fp_key"
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "files.example:8080"
    assert headers["connection"] == "close"
    assert "x-hop" not in headers
    assert "keep-alive" not in headers
    assert [key for key, _ in answer["headers"]].count("x-forwarded-for") == 1


def test_a_chunked_body_is_relayed(base: str) -> None:
    pieces = [b"first;", b"x" * 100_000, b"last"]
    response = requests.put(f"{base}/uploads/parts", data=iter(pieces), timeout=10)
    answer = response.json()
    assert response.status_code == 200
    assert dict(answer["headers"])["transfer-encoding"] == "chunked"
    assert answer["length"] == sum(map(len, pieces))
    assert answer["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def _connection(base: str, timeout: float) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(base.removeprefix("http://"), timeout=timeout)


def test_a_large_upload_streams_through(
    proxy: tuple[str, int], upstreams: dict[str, Upstream]
) -> None:
    base, pid = proxy
    upstream = upstreams["presign"]
    upstream.receiving.clear()
    digest = hashlib.sha256()
    with closing(_connection(base, 20)) as conn:
        conn.putrequest("POST", "/uploads/large")
        conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        piece = bytes(range(256)) * 4096  # 1 MiB
        conn.send(piece)
        digest.update(piece)
        # A front that buffered whole bodies would pass nothing on before the last byte.
        wait_until(upstream.receiving.is_set, timeout=10, what="the upstream to receive bytes")
        for _ in range(BIG // MIB - 1):
            conn.send(piece)
            digest.update(piece)
        response = conn.getresponse()
        answer = json.loads(response.read())
    assert response.status == 200
    assert (answer["length"], answer["sha256"]) == (BIG, digest.hexdigest())
    assert peak_memory(pid) < BIG


def test_a_large_answer_streams_through(
    proxy: tuple[str, int], upstreams: dict[str, Upstream]
) -> None:
    base, pid = proxy
    upstream = upstreams["query"]
    upstream.release.clear()
    with requests.get(f"{base}/files/big?size={BIG}", stream=True, timeout=10) as response:
        pieces = response.iter_content(MIB)
        received = len(next(pieces))  # the upstream holds the rest until this arrived
        upstream.release.set()
        received += sum(len(piece) for piece in pieces)
    assert response.status_code == 200
    assert received == BIG
    assert peak_memory(pid) < BIG


@pytest.mark.parametrize("target", ["/", "/nothing", "/upload", "/wsx/../w", "/files/../admin"])
def test_an_unknown_path_is_a_404_problem(base: str, target: str) -> None:
    with closing(_connection(base, 10)) as conn:  # sends the path as written, dots and all
        conn.request("POST", f"{target}?q=1", body=b"ignored")
        response = conn.getresponse()
        problem = json.loads(response.read())
    assert response.status == 404
    assert response.getheader("Content-Type") == "application/problem+json"
    assert problem == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no such route",
        "instance": target,
    }


def test_a_path_above_the_root_is_a_400_problem(base: str) -> None:
    with closing(_connection(base, 10)) as conn:
        conn.request("GET", "/files/../../etc/passwd")
        response = conn.getresponse()
        problem = json.loads(response.read())
    assert response.status == 400
    assert response.getheader("Content-Type") == "application/problem+json"
    assert problem["status"] == 400


def test_an_upstream_that_is_down_is_a_502_problem(tmp_path: Path) -> None:
    with front(tmp_path, {"query": f"http://127.0.0.1:{free_port()}"}) as (url, _):
        response = requests.get(f"{url}/files/f-1", timeout=10)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["title"]) == (502, "Bad Gateway")
    assert problem["detail"] == "query is unreachable"


def test_a_websocket_round_trip_through_ws(base: str) -> None:
    url = base.replace("http://", "ws://") + "/ws?ticket=t-1"
    with connect(url, origin=Origin("http://localhost:8080"), open_timeout=10) as ws:
        seen = json.loads(ws.recv(timeout=10))
        ws.send("hello")
        assert ws.recv(timeout=10) == "hello"
        large = bytes(range(256)) * 4096
        ws.send(large)
        assert ws.recv(timeout=10) == large
    assert seen == {
        "path": "/ws?ticket=t-1",
        "origin": "http://localhost:8080",
        "x-forwarded-for": "127.0.0.1",
    }


def test_a_plain_request_to_ws_reaches_the_gateway(base: str) -> None:
    response = requests.get(f"{base}/ws", timeout=10)
    assert response.status_code == 426  # the websockets server's answer to a plain GET


def test_the_routes_are_those_of_nginx_conf() -> None:
    conf = (ROOT / "local" / "nginx.conf").read_text()
    locations = re.findall(r"location (/\S+) \{\s*set \$\w+ http://(\w+):(\d+);", conf)
    routed = {prefix: (name, int(port)) for prefix, name, port in locations}
    ours = {prefix: (name, urlsplit(DEFAULT_UPSTREAMS[name]).port) for prefix, name in ROUTES}
    assert routed == ours
    assert set(UPGRADES) == {routed["/ws"][0]}
    assert re.search(r"location = / \{[^}]*try_files /index.html =404;", conf)
    assert 'if ($uri ~ "^/(?!assets/)[^/]+/|/\\.") {' in conf  # as local.front_files
    assert "try_files $uri =404;" in conf


def test_a_100_continue_reaches_the_client_before_it_sends_the_body(base: str) -> None:
    with socket.create_connection(("127.0.0.1", urlsplit(base).port or 80), timeout=10) as sock:
        sock.sendall(
            b"POST /uploads/expecting HTTP/1.1\r\nHost: front\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)  # the upstream waits for the body: nothing else comes
        sock.sendall(b"hello")
        final = b"".join(iter(lambda: sock.recv(65536), b""))  # closed after the answer
    assert interim.startswith(b"HTTP/1.1 100 ")
    assert final.startswith(b"HTTP/1.1 200 ")
    assert (
        json.loads(final.split(b"\r\n\r\n", 1)[1])["sha256"] == hashlib.sha256(b"hello").hexdigest()
    )


PAGE = {
    "index.html": b"<!doctype html><title>page</title>",
    "app.js": b"console.log('hi')",
    "style.css": b"body { margin: 0 }",
    "data.bin": bytes(range(256)) * 1024,
    "assets/icons/logo.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    "sub/secret.txt": b"not served: a folder other than assets",
    ".env": b"not served: a dot-file",
}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A front serving a web folder of ``PAGE``, a link leading out of it and a file beside it."""
    tmp = tmp_path_factory.mktemp("page")
    web = tmp / "web"
    for name, content in PAGE.items():
        (web / name).parent.mkdir(parents=True, exist_ok=True)
        (web / name).write_bytes(content)
    (tmp / "outside.txt").write_text("not served: outside the folder")
    (web / "outside.txt").symlink_to(tmp / "outside.txt")
    with front(tmp, {}, web) as (url, _):
        yield url


@pytest.mark.parametrize(
    ("target", "name", "content_type"),
    [
        ("/", "index.html", "text/html; charset=utf-8"),
        ("/?token=t", "index.html", "text/html; charset=utf-8"),
        ("/index.html", "index.html", "text/html; charset=utf-8"),
        ("/app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "style.css", "text/css; charset=utf-8"),
        ("/data.bin", "data.bin", "application/octet-stream"),
        ("/assets/icons/logo.svg", "assets/icons/logo.svg", "image/svg+xml"),
        ("/assets/icons/../../app.js", "app.js", "text/javascript; charset=utf-8"),
        ("/%61pp.js", "app.js", "text/javascript; charset=utf-8"),
    ],
)
def test_the_page_and_its_files_are_served(
    page: str, target: str, name: str, content_type: str
) -> None:
    response = requests.get(page + target, timeout=10)
    assert response.status_code == 200
    assert response.content == PAGE[name]
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Length"] == str(len(PAGE[name]))
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    head = requests.head(page + target, timeout=10)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(len(PAGE[name]))


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/missing.js"),
        ("GET", "/sub/secret.txt"),  # only files directly in the folder, or under assets/
        ("GET", "/sub"),
        ("GET", "/assets"),
        ("GET", "/assets/icons"),
        ("GET", "/.env"),
        ("GET", "/%2Eenv"),
        ("GET", "/outside.txt"),  # a link out of the folder
        ("GET", "/app.js%00.html"),
        ("POST", "/index.html"),
        ("DELETE", "/"),
    ],
)
def test_nothing_else_is_served(page: str, method: str, target: str) -> None:
    with closing(_connection(page, 10)) as conn:  # sends the target as written
        conn.request(method, target)
        response = conn.getresponse()
        body = response.read()
    assert response.status == 404, body
    assert response.getheader("Content-Type") == "application/problem+json"
    assert b"not served" not in body


@pytest.mark.parametrize(
    "target", ["/../web/index.html", "/%2E%2E/outside.txt", "/assets/..%2F..%2Foutside.txt"]
)
def test_a_path_above_the_folder_is_a_400(page: str, target: str) -> None:
    with closing(_connection(page, 10)) as conn:
        conn.request("GET", target)
        response = conn.getresponse()
        body = response.read()
    assert response.status == 400
    assert b"not served" not in body


def test_the_repository_page_is_served_by_default(base: str) -> None:
    response = requests.get(base + "/", timeout=10)
    assert response.status_code == 200
    assert response.content == (ROOT / "web" / "index.html").read_bytes()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
