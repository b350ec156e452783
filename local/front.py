"""Local front: one URL for the clients of ``make up``, routing as ``local/nginx.conf`` does.

``python -m local.front [--host 127.0.0.1] [--port 8080] [--upstream NAME=URL …] [--web DIR]``
serves HTTP/1.1 and sends each request to the function its path belongs to (``ROUTES``): a plain
string prefix of the normalised path, as an nginx ``location /prefix`` (so ``/filesx`` goes to
query too). Any other ``GET`` or ``HEAD`` may be the web page: ``/`` and the files of ``web/``
(``local.front_files``), so the page calls the API from its own origin; anything else is a 404.
The request target goes upstream unchanged, with the client's ``Host``, ``X-Forwarded-For``
(appended to), ``X-Forwarded-Proto`` and ``X-Forwarded-Host``; hop-by-hop headers are dropped. An
``Upgrade`` request to ``/ws`` is handed to the gateway and, once it answers 101, bytes are
tunnelled both ways until either side closes. Interim answers
(``100 Continue``) reach the client as they come.

Bodies stream both ways in small pieces, framing (``Content-Length`` or chunked) relayed as it
came, so memory stays flat whatever the size; unlike nginx there is no body size limit (the
functions enforce theirs). Each client connection carries one request: every answer says
``Connection: close`` (and so does every upstream request, as nginx's ``proxy_http_version 1.1``
without keep-alive does). Upstream refused, unreachable or closing before answering: 502; no
answer within ``TIMEOUT`` (presign: ``ANSWER_TIMEOUTS``) after the request was sent: 504; both
as problem+json, like the 404 and 400s of the front itself.

Configuration: argument > environment > default. ``FILEPIPE_FRONT_HOST``, ``FILEPIPE_FRONT_PORT``,
``FILEPIPE_FRONT_UPSTREAMS`` (``"presign=http://127.0.0.1:8081,query=…"``, only the named ones
change) and ``FILEPIPE_FRONT_WEB`` beside the flags; the defaults are the ports of ``make up``
and the repository's ``web/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from filepipe.config import LOG_LEVEL
from filepipe.errors import BadRequest, NotFound, ProblemError
from filepipe.logs import configure_logging
from local.front_files import WebFiles
from local.http1 import (
    HEAD_LIMIT,
    PIECE,
    TIMEOUT,
    Head,
    body,
    encode,
    read_head,
    request_framing,
    response_framing,
)

log = logging.getLogger("local.front")

HOST = "FILEPIPE_FRONT_HOST"
PORT = "FILEPIPE_FRONT_PORT"
UPSTREAMS = "FILEPIPE_FRONT_UPSTREAMS"
WEB = "FILEPIPE_FRONT_WEB"
DEFAULT_WEB = Path(__file__).resolve().parents[1] / "web"

DEFAULT_UPSTREAMS = {
    "presign": "http://127.0.0.1:8081",
    "query": "http://127.0.0.1:8083",
    "webhooks": "http://127.0.0.1:8085",
    "gateway": "http://127.0.0.1:8086",
}
ROUTES = (
    ("/uploads", "presign"),
    ("/upload-tokens", "presign"),
    ("/s3", "presign"),
    ("/files", "query"),
    ("/webhooks", "webhooks"),
    ("/ws", "gateway"),
)
"""Path prefix → upstream name, the ``location`` blocks of ``local/nginx.conf``."""
ANSWER_TIMEOUTS = {"presign": 300.0}
"""Seconds an upstream may take to answer when not ``TIMEOUT``: presign completes multipart
uploads, which waits until storage has assembled the object (nginx: ``proxy_read_timeout``)."""
UPGRADES = frozenset({"gateway"})
"""Upstreams an ``Upgrade`` request is tunnelled to (nginx's ``location /ws``)."""

TUNNEL_IDLE = 3600.0
"""Seconds a tunnel may stay silent both ways before it is closed (``proxy_read_timeout 1h``)."""
FORWARDED = frozenset({"host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})


class BadGateway(ProblemError):
    status = 502
    title = "Bad Gateway"


class GatewayTimeout(ProblemError):
    status = 504
    title = "Gateway Timeout"


def normalise(target: str) -> str:
    """The path of ``target`` as nginx matches it: percent-decoded, with ``.``/``..`` and
    repeated slashes resolved; ``BadRequest`` if it is no path or leaves the root."""
    if not target.startswith("/"):
        raise BadRequest("the request target must be a path")
    segments: list[str] = []
    for segment in unquote(target.split("?", 1)[0]).split("/"):
        if segment == "..":
            if not segments:
                raise BadRequest("the path leaves the root")
            segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    return "/" + "/".join(segments)


def upstream_of(path: str) -> str | None:
    """The name of the upstream for the normalised ``path`` (what goes upstream is the request
    target unchanged), or ``None``."""
    return next((name for prefix, name in ROUTES if path.startswith(prefix)), None)


class Front:
    """The proxy: one ``handle`` per client connection, one request per connection."""

    def __init__(self, upstreams: Mapping[str, str], web: WebFiles) -> None:
        self.upstreams = dict(upstreams)
        self.web = web

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, target = "-", "-"
        try:
            head = await asyncio.wait_for(read_head(reader), TIMEOUT)
            method, target = head.start[0], head.start[1]
            path = normalise(target)
            name = upstream_of(path)
            if name is not None:
                status = await self._proxy(head, name, self.upstreams[name], reader, writer)
                log.info("%s %s → %s %s", method, target.split("?", 1)[0], name, status)
                return
            file = self.web.find(path) if method in ("GET", "HEAD") else None
            if file is None:
                raise NotFound("no such route")
            await self.web.send(writer, method, file)
            log.info("%s %s → web 200", method, path)
        except ProblemError as problem:
            log.info("%s %s → %d", method, target.split("?", 1)[0], problem.status)
            await _send_problem(writer, problem, method, target)
        except (OSError, EOFError, TimeoutError):
            pass  # the client left, or a stream broke after the answer began: just close
        finally:
            writer.close()

    async def _proxy(
        self,
        head: Head,
        name: str,
        base: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> int:
        upgrade = head.get("upgrade") if name in UPGRADES else None
        framing = request_framing(head)
        address = urlsplit(base)
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address.hostname, address.port or 80, limit=HEAD_LIMIT),
                TIMEOUT,
            )
        except TimeoutError as exc:
            raise GatewayTimeout(f"{name} did not accept the connection") from exc
        except OSError as exc:
            raise BadGateway(f"{name} is unreachable") from exc
        start = (head.start[0], head.start[1], "HTTP/1.1")
        up_writer.write(encode(start, self._upstream_headers(head, writer, upgrade)))
        sending = asyncio.create_task(_send(body(reader, framing), up_writer))
        try:
            answer = await self._answer(up_reader, writer, sending, name)
            status = int(answer.start[1])
            if status == 101 and upgrade is not None:
                await sending
                writer.write(encode(("HTTP/1.1", "101", answer.start[2]), _upgraded(answer)))
                await writer.drain()
                await _tunnel(reader, writer, up_reader, up_writer)
                return status
            if status == 101:
                raise BadGateway(f"{name} switched protocols unasked")
            headers = [*answer.without(frozenset()), ("Connection", "close")]
            writer.write(encode(("HTTP/1.1", answer.start[1], answer.start[2]), headers))
            framing = response_framing(head.start[0], status, answer)
            # A malformed upstream body once the answer began: closing is all that is left.
            with contextlib.suppress(ProblemError):
                await _send(body(up_reader, framing), writer)
            return status
        finally:
            sending.cancel()
            if sending.done() and not sending.cancelled():
                sending.exception()  # the answer is what counted; a late failure is no news
            up_writer.close()

    async def _answer(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sending: asyncio.Task[None],
        name: str,
    ) -> Head:
        """The upstream's final (or 101) head, interim ones (``100 Continue``) relayed; waits
        ``TIMEOUT`` (presign: ``ANSWER_TIMEOUTS``) at most once the request is sent. A client
        failing to send its body ends the exchange."""
        answering = asyncio.create_task(self._final_head(up_reader, writer))
        try:
            await asyncio.wait({answering, sending}, return_when=asyncio.FIRST_COMPLETED)
            if not answering.done() and (failed := sending.exception()) is not None:
                raise failed  # the client's failure (gone, silent, malformed body)
            try:
                if not answering.done():
                    timeout = ANSWER_TIMEOUTS.get(name, TIMEOUT)
                    await asyncio.wait_for(asyncio.shield(answering), timeout)
                return answering.result()
            except TimeoutError as exc:
                raise GatewayTimeout(f"{name} did not answer in time") from exc
            except (OSError, EOFError, ProblemError) as exc:
                raise BadGateway(f"{name} closed the connection without an answer") from exc
        finally:
            answering.cancel()

    async def _final_head(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> Head:
        while True:
            answer = await read_head(up_reader)
            if not answer.start[1].isdigit():
                raise BadRequest("the upstream's answer is not HTTP/1.1")
            if not 100 <= int(answer.start[1]) < 200 or answer.start[1] == "101":
                return answer
            interim = ("HTTP/1.1", answer.start[1], answer.start[2])
            writer.write(encode(interim, answer.without(frozenset())))

    def _upstream_headers(
        self, head: Head, client: asyncio.StreamWriter, upgrade: str | None
    ) -> list[tuple[str, str]]:
        peer = client.get_extra_info("peername")
        address = str(peer[0]) if peer else "unknown"
        forwarded = head.get("x-forwarded-for")
        host = head.get("host")
        headers = head.without(FORWARDED)
        if host is not None:
            headers += [("Host", host), ("X-Forwarded-Host", host)]
        headers += [
            ("X-Forwarded-For", f"{forwarded}, {address}" if forwarded else address),
            ("X-Forwarded-Proto", "http"),
        ]
        if upgrade is not None:
            return [*headers, ("Upgrade", upgrade), ("Connection", "upgrade")]
        return [*headers, ("Connection", "close")]


def _upgraded(answer: Head) -> list[tuple[str, str]]:
    upgrade = answer.get("upgrade") or "websocket"
    return [*answer.without(frozenset()), ("Upgrade", upgrade), ("Connection", "upgrade")]


async def _send(pieces: AsyncIterator[bytes], writer: asyncio.StreamWriter) -> None:
    """Write ``pieces`` as they come, waiting for ``writer`` to take each (flat memory). An
    upstream that stops reading ends the copy quietly: its answer, if any, says why."""
    async for piece in pieces:
        writer.write(piece)
        try:
            await writer.drain()
        except ConnectionError:
            return


async def _tunnel(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until both sides are done; a side's EOF is passed on as a half-close."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while piece := await asyncio.wait_for(source.read(PIECE), TUNNEL_IDLE):
                sink.write(piece)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()
        except (OSError, TimeoutError):
            sink.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _send_problem(
    writer: asyncio.StreamWriter, problem: ProblemError, method: str, target: str
) -> None:
    content = json.dumps(problem.to_problem(target.split("?", 1)[0])).encode()
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Content-Length", str(len(content))),
        ("Connection", "close"),
    ]
    writer.write(encode(("HTTP/1.1", str(problem.status), problem.title), headers))
    if method != "HEAD":
        writer.write(content)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def parse_upstreams(text: str) -> dict[str, str]:
    """``"presign=http://127.0.0.1:8081,query=…"`` → ``{"presign": "http://…", …}``."""
    upstreams: dict[str, str] = {}
    for item in filter(str.strip, text.split(",")):
        name, _, url = (part.strip() for part in item.partition("="))
        if name not in DEFAULT_UPSTREAMS:
            raise ValueError(f"{item!r}: the upstreams are {', '.join(DEFAULT_UPSTREAMS)}")
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.path.strip("/"):
            raise ValueError(f"{name}: {url!r} is not an http://host:port URL")
        upstreams[name] = url.rstrip("/")
    return upstreams


async def serve(host: str, port: int, upstreams: Mapping[str, str], web: Path) -> None:
    """Serve until SIGTERM or SIGINT, then drop the open connections and return."""
    front = Front(upstreams, WebFiles(web))
    connections: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            await front.handle(reader, writer)
        finally:
            connections.discard(task)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = await asyncio.start_server(connected, host, port, limit=HEAD_LIMIT)
    log.info("front on http://%s:%d/ → %s, web page from %s", host, port, upstreams, web)
    await stop.wait()
    log.info("stopping")
    server.close()
    for task in list(connections):
        task.cancel()
    await asyncio.gather(*connections, return_exceptions=True)
    await server.wait_closed()


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m local.front", description=__doc__)
    parser.add_argument("--host", default=None, help=f"default: ${HOST}, else 127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help=f"default: ${PORT}, else 8080")
    parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=URL",
        help=f"e.g. query=http://127.0.0.1:8083 (default: ${UPSTREAMS}, else make up's ports)",
    )
    parser.add_argument(
        "--web", type=Path, default=None, help=f"the page's files (default: ${WEB}, else web/)"
    )
    args = parser.parse_args(argv)
    configure_logging(env.get(LOG_LEVEL) or "INFO", "front")
    try:
        upstreams = {
            **DEFAULT_UPSTREAMS,
            **parse_upstreams(env.get(UPSTREAMS, "")),
            **parse_upstreams(",".join(args.upstream)),
        }
        port = args.port if args.port is not None else int(env.get(PORT) or 8080)
    except ValueError as exc:
        parser.error(str(exc))
    host = args.host or env.get(HOST) or "127.0.0.1"
    web = args.web or Path(env.get(WEB) or DEFAULT_WEB)
    asyncio.run(serve(host, port, upstreams, web))
    return 0


if __name__ == "__main__":
    sys.exit(main())
