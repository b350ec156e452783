"""The whole of ``make up`` as real processes behind one URL, for clients that need all of it.

The pipeline (``tests.support.pipeline``: broker emulator and process function, wired to the
session's S3 server, database and RabbitMQ), plus presign, query, notify, the webhook API and the
WebSocket gateway, and ``python -m local.front`` routing ``/uploads``, ``/files``, ``/webhooks``
and ``/ws`` to them as under ``make up``. Each process's output goes to ``<name>.log`` in
``logs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.pipeline import Pipeline, pipeline
from tests.support.processes import running
from tests.support.waiting import free_port

FUNCTIONS = {
    "presign": "functions/presign/main.py",
    "query": "functions/query/main.py",
    "notify": "functions/notify/main.py",
    "webhooks": "functions/notify/main.py",
}
_PART_PUT = re.compile(r'"PUT [^ ]*[?&]partNumber=([0-9]+)[^ ]*[?&]uploadId=([^& ]+)')
_PART_PUT_OTHER_ORDER = re.compile(r'"PUT [^ ]*[?&]uploadId=([^& ]+)[^ ]*[?&]partNumber=([0-9]+)')


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
        upstreams = {name: f"http://127.0.0.1:{ports[name]}" for name in FUNCTIONS}
        upstreams["gateway"] = f"http://127.0.0.1:{gateway}"
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


def part_puts(s3_log: Path, upload_id: str) -> list[int]:
    """The part numbers of every UploadPart request of ``upload_id`` the S3 server logged
    (werkzeug's request line, one JSON log record each), in order."""
    numbers = []
    for line in s3_log.read_text(errors="replace").splitlines():
        try:
            message = str(json.loads(line).get("message", ""))
        except ValueError:
            continue
        if match := _PART_PUT.search(message):
            number, uploaded = match[1], match[2]
        elif match := _PART_PUT_OTHER_ORDER.search(message):
            uploaded, number = match[1], match[2]
        else:
            continue
        if uploaded == upload_id:
            numbers.append(int(number))
    return numbers
