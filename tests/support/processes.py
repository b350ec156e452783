"""Run real server processes for tests: start, wait until they listen, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.support.waiting import free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(
    args: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    output: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``python -m``-style ``args`` with the test interpreter; yield once ``port`` listens.

    With ``output``, the process's stdout and stderr are appended to that file.
    """
    full_env = {**os.environ, **(env or {})}
    with ExitStack() as files:
        sink = files.enter_context(output.open("ab")) if output is not None else None
        proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=full_env,
            start_new_session=True,
            stdout=sink,
            stderr=subprocess.STDOUT if sink is not None else None,
        )
    try:
        wait_until(
            lambda: proc.poll() is not None or port_open(port),
            timeout=timeout,
            what=f"{args} to listen on {port}",
        )
        if proc.poll() is not None:
            raise AssertionError(f"{args} exited with {proc.returncode} before listening")
        yield proc
    finally:
        stop(proc)


@contextmanager
def functions_running(
    functions: Mapping[str, tuple[str, str]], env: Mapping[str, str]
) -> Iterator[dict[str, str]]:
    """Each ``name: (source, target)`` served by ``python -m filepipe.server`` (gunicorn, as
    deployed) on a free port; yield their base URLs by name, stop them all on exit."""
    urls = {}
    with ExitStack() as stack:
        for name, (source, target) in functions.items():
            port = free_port()
            args = ["-m", "filepipe.server", "--source", source, "--target", target]
            stack.enter_context(running([*args, "--port", str(port)], port=port, env=env))
            urls[name] = f"http://127.0.0.1:{port}"
        yield urls


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


def peak_memory(pid: int) -> int:
    """The process's peak resident set (``VmHWM``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")
