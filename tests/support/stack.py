"""The whole of ``make up`` as real processes behind one URL, for clients that need all of it.

The pipeline (``tests.support.pipeline``: broker emulator and process function, wired to the
session's S3 server, database and RabbitMQ), plus presign, query, notify, the webhook API and the
WebSocket gateway, and ``python -m local.front`` routing ``/uploads``, ``/upload-tokens``,
``/s3``, ``/files``, ``/webhooks`` and ``/ws`` to them and serving the web page (``web/``) as
under ``make up``, which also lets pages on ``LOCAL_ORIGINS`` call them (CORS). Each process's
output goes to ``<name>.log`` in ``logs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from local.front import DEFAULT_UPSTREAMS
from tests.support.pipeline import Pipeline, pipeline
from tests.support.processes import running
from tests.support.waiting import free_port

FUNCTIONS = {
    "presign": "functions/presign/main.py",
    "query": "functions/query/main.py",
    "notify": "functions/notify/main.py",
    "webhooks": "functions/notify/main.py",
}
LOCAL_ORIGINS = "http://localhost:*,http://127.0.0.1:*"
"""The browser origins ``make up`` allows (``local/filepipe.env``), for the stack and the
session's S3 server."""
_PUT = re.compile(r'"PUT (\S+) HTTP/[0-9.]+"')


@dataclass(frozen=True)
class Stack:
    url: str
    """The front: the one base URL clients use (``FILEPIPE_URL``)."""
    pipe: Pipeline
    logs: Path


@contextmanager
def full_stack(service_env: Mapping[str, str], *, logs: Path, **overrides: str) -> Iterator[Stack]:
    """Every function and the front; ``overrides`` are environment every process gets (beside
    ``FILEPIPE_ALLOWED_ORIGINS``, ``LOCAL_ORIGINS`` unless overridden)."""
    ports = {name: free_port() for name in (*FUNCTIONS, "gateway", "front")}
    with ExitStack() as stack:
        pipe = stack.enter_context(
            pipeline(
                service_env,
                notify_url=f"http://127.0.0.1:{ports['notify']}",
                logs=logs,
                **{"FILEPIPE_ALLOWED_ORIGINS": LOCAL_ORIGINS, **overrides},
            )
        )
        commands = {
            name: ["-m", "filepipe.server", "--target", name, "--source", source, "--host"]
            for name, source in FUNCTIONS.items()
        }
        commands["gateway"] = ["-m", "filepipe.notify.gateway", "--host"]
        upstreams = {name: f"http://127.0.0.1:{ports[name]}" for name in DEFAULT_UPSTREAMS}
        flags = [arg for item in upstreams.items() for arg in ("--upstream", "=".join(item))]
        commands["front"] = ["-m", "local.front", *flags, "--host"]
        started = [
            running(
                [*args, "127.0.0.1", "--port", str(ports[name])],
                port=ports[name],
                env=pipe.env,
                output=logs / f"{name}.log",
            )
            for name, args in commands.items()
        ]
        _enter_together(stack, started)
        yield Stack(f"http://127.0.0.1:{ports['front']}", pipe, logs)


def _enter_together(stack: ExitStack, managers: Sequence[AbstractContextManager[object]]) -> None:
    """Enter ``managers`` at once (each in a thread: they start a process and wait for it); the
    ones entered are exited together, at once too, when ``stack`` closes. The first failure to
    enter is raised."""
    with ThreadPoolExecutor(len(managers)) as pool:
        entering = [(manager, pool.submit(manager.__enter__)) for manager in managers]
    entered = [manager for manager, future in entering if future.exception() is None]

    def exit_together() -> None:
        with ThreadPoolExecutor(len(managers)) as closing:
            for manager in entered:
                closing.submit(manager.__exit__, None, None, None)

    stack.callback(exit_together)
    errors = [error for _, future in entering if (error := future.exception()) is not None]
    if errors:
        raise errors[0]


def part_puts(s3_log: Path, key: str) -> list[int]:
    """The part numbers of every UploadPart request for the object ``key`` that the S3 server
    logged (werkzeug's request line, one JSON record each), in the order they came."""
    numbers = []
    for line in s3_log.read_text(errors="replace").splitlines():
        try:
            message = str(json.loads(line).get("message", ""))
        except ValueError:
            continue
        if not (request := _PUT.search(message)):
            continue
        target = urlsplit(request[1])
        query = parse_qs(target.query)
        if target.path.endswith(f"/{key}") and "partNumber" in query:
            numbers.append(int(query["partNumber"][0]))
    return numbers
