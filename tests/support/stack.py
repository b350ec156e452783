"""The whole of ``make up`` as real processes behind one URL, for clients that need all of it.

The pipeline (``tests.support.pipeline``: broker emulator and process function, wired to the
session's S3 server, database and RabbitMQ), plus presign, query, notify, the webhook API and the
WebSocket gateway, and ``python -m local.front`` routing ``/uploads``, ``/files``, ``/webhooks``
and ``/ws`` to them as under ``make up``. Each process's output goes to ``<name>.log`` in
``logs``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
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


@dataclass(frozen=True)
class Stack:
    url: str
    """The front: the one base URL clients use (``FILEPIPE_URL``)."""
    pipe: Pipeline
    logs: Path


@contextmanager
def full_stack(service_env: Mapping[str, str], *, logs: Path, **overrides: str) -> Iterator[Stack]:
    """Every function and the front; ``overrides`` are environment every process gets."""
    ports = {name: free_port() for name in (*FUNCTIONS, "gateway", "front")}
    with ExitStack() as stack:
        pipe = stack.enter_context(
            pipeline(
                service_env,
                notify_url=f"http://127.0.0.1:{ports['notify']}",
                logs=logs,
                **overrides,
            )
        )
        for name, source in FUNCTIONS.items():
            port = ports[name]
            serve = ["-m", "filepipe.server", "--target", name, "--source", source]
            stack.enter_context(
                running(
                    [*serve, "--host", "127.0.0.1", "--port", str(port)],
                    port=port,
                    env=pipe.env,
                    output=logs / f"{name}.log",
                )
            )
        gateway = ports["gateway"]
        stack.enter_context(
            running(
                ["-m", "filepipe.notify.gateway", "--host", "127.0.0.1", "--port", str(gateway)],
                port=gateway,
                env=pipe.env,
                output=logs / "gateway.log",
            )
        )
        upstreams = {name: f"http://127.0.0.1:{ports[name]}" for name in DEFAULT_UPSTREAMS}
        flags = [arg for item in upstreams.items() for arg in ("--upstream", "=".join(item))]
        stack.enter_context(
            running(
                ["-m", "local.front", "--port", str(ports["front"]), *flags],
                port=ports["front"],
                env=pipe.env,
                output=logs / "front.log",
            )
        )
        yield Stack(f"http://127.0.0.1:{ports['front']}", pipe, logs)


def part_puts(s3_log: Path, key: str) -> list[int]:
    """The part numbers of every UploadPart request for the object ``key`` that the S3 server
    logged (werkzeug's request line, one JSON record each), in the order they came."""
    numbers = []
    for line in s3_log.read_text(errors="replace").splitlines():
        try:
            request = str(json.loads(line).get("message", ""))
        except ValueError:
            continue
        method, _, rest = request.strip('"').partition(" ")
        target = urlsplit(rest.split(" ", 1)[0])
        query = parse_qs(target.query)
        if method == "PUT" and target.path.endswith(f"/{key}") and "partNumber" in query:
            numbers.append(int(query["partNumber"][0]))
    return numbers
