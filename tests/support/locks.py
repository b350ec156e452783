"""A file lock held by another process, which a test can SIGKILL (a worker dying mid-file)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import ROOT

_HOLDER = textwrap.dedent(
    """
    import sys, threading
    from redis import Redis
    from filepipe.locks import FileLock
    lock = FileLock(Redis.from_url(sys.argv[1]), sys.argv[2], ttl=float(sys.argv[3]))
    lock.__enter__()
    print("held", flush=True)
    threading.Event().wait()
    """
)


def lock_key(file_id: str) -> str:
    """The Redis key of a file's lock (pottery prefixes ``redlock:``)."""
    return f"redlock:filepipe:file:{file_id}"


@contextmanager
def lock_held_elsewhere(
    redis_url: str, file_id: str, ttl: float
) -> Iterator[subprocess.Popen[bytes]]:
    """A process that holds ``file_id``'s lock (its heartbeat renewing it) and works forever;
    yielded once it holds the lock, killed afterwards if the test did not kill it."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLDER, redis_url, file_id, str(ttl)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            yield holder
        finally:
            holder.kill()
            holder.wait(10)
