"""A redis-server of a test's own, on a port of its own: kill it to make Redis unreachable (the
shared Redis on :6379 is never stopped), start it again on the same port to heal."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.processes import stop
from tests.support.waiting import free_port, port_open, wait_until


def redis_server_argv(port: int, directory: Path) -> list[str]:
    """A throw-away ``redis-server`` on ``127.0.0.1:port`` that persists nothing (``directory``
    is its working directory, for anything it would write)."""
    return [
        "redis-server",
        *("--port", str(port), "--bind", "127.0.0.1"),
        *("--save", "", "--appendonly", "no", "--dir", str(directory)),
    ]


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            redis_server_argv(self.port, self._directory),
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), what=f"redis-server to listen on {self.port}")

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no goodbye to its clients)."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(10)

    def close(self) -> None:
        if self._process is not None:
            stop(self._process)
