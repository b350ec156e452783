"""The phase-2 pipeline as real processes: broker emulator and process function, plus a
recording ``notify`` subscriber, wired to this test session's S3 server, database and RabbitMQ."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.broker import broker_emulator
from tests.support.functions import function_app
from tests.support.processes import running, stop
from tests.support.receiver import Receiver, receiving
from tests.support.waiting import free_port

EVENT_TOKEN = "pipeline-event-token-0123456789"
"""What the broker sends the process function, which refuses events without it."""


@dataclass
class Pipeline:
    env: dict[str, str]
    broker_url: str
    process_port: int
    prefix: str
    notify: Receiver
    _stack: ExitStack = field(repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    logs: Path | None = None
    """Where the processes' output goes (``<name>.log`` files), if captured."""

    @property
    def process_url(self) -> str:
        return f"http://127.0.0.1:{self.process_port}/"

    def start_process(self) -> None:
        self.process = self._stack.enter_context(
            running(
                [
                    "-m",
                    "filepipe.server",
                    "--target",
                    "process",
                    "--source",
                    "functions/process/main.py",
                    "--port",
                    str(self.process_port),
                ],
                port=self.process_port,
                env=self.env,
                output=self.logs / "process.log" if self.logs else None,
            )
        )

    def kill_process(self) -> None:
        """SIGKILL the function's whole process group (gunicorn master and workers)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        stop(self.process)


def presign_client(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    """The presign function, publishing to the pipeline's broker and signing for its S3."""
    for name in ("K_SINK", "FILEPIPE_S3_ENDPOINT_URL"):
        monkeypatch.setenv(name, pipe.env[name])
    return function_app("presign").test_client()


@contextmanager
def pipeline(
    service_env: Mapping[str, str],
    *,
    notify_url: str | None = None,
    logs: Path | None = None,
    **overrides: str,
) -> Iterator[Pipeline]:
    """Broker emulator and process function; ``notify`` events go to ``notify_url`` if given
    (a real notify function), else to the recording receiver ``Pipeline.notify``. With
    ``logs`` (a directory), their output is kept there (``broker.log``, ``process.log``)."""
    prefix = f"filepipe-test-{uuid.uuid4().hex[:8]}"
    broker_port, process_port = free_port(), free_port()
    with ExitStack() as stack:
        notify = stack.enter_context(receiving())
        env = {
            **service_env,
            "K_SINK": f"http://127.0.0.1:{broker_port}/",
            "FILEPIPE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FILEPIPE_LOCK_TTL": "3",
            "FILEPIPE_RECONCILE_GRACE": "1",
            "FILEPIPE_BROKER_PORT": str(broker_port),
            "FILEPIPE_BROKER_PREFIX": prefix,
            "FILEPIPE_SUBSCRIBERS": (
                f"process=http://127.0.0.1:{process_port},notify={notify_url or notify.url}"
            ),
            "FILEPIPE_PING_INTERVAL": "0",
            "FILEPIPE_BROKER_BACKOFF_SCALE": "0.5",
            "FILEPIPE_EVENT_TOKEN": EVENT_TOKEN,
            **overrides,
        }
        broker_log = logs / "broker.log" if logs else None
        stack.enter_context(broker_emulator(env, port=broker_port, output=broker_log))
        result = Pipeline(
            env, f"http://127.0.0.1:{broker_port}/", process_port, prefix, notify, stack, logs=logs
        )
        result.start_process()
        yield result
