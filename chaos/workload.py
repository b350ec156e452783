"""The uploads of a scenario, made through the public API as a user would.

Each file goes through ``filepipe_client``'s ``Uploader`` (``POST /uploads`` via the front, then
the presigned PUT), whose client retries 429 and 5xx, honouring ``Retry-After``. A user whose
upload still fails runs ``filepipe upload`` again: ``Uploader`` resumes it under the same
Idempotency-Key, so the harness does that too, until the upload deadline. Uploads start at a
steady rate so that they run before, during and after the fault.

Every tenth file is declared with a type its bytes are not (``image/png`` for text): those must
end REJECTED, the others ("good" files) PROCESSED.
"""

from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chaos.observers import RecordingTransport
from chaos.report import Upload
from filepipe_client import (
    Backoff,
    Client,
    Config,
    ConnectionFailed,
    FilepipeError,
    RateLimited,
    ServerError,
    StorageError,
    Uploader,
)

BAD_EVERY = 10
CLIENT_BACKOFF = Backoff(retries=6, base=0.5, cap=10.0)
RETRY_PAUSE = 2.0
"""Seconds between two runs of the same upload (a user trying again)."""
CONCURRENCY = 16


@dataclass(frozen=True)
class Planned:
    path: Path
    content_type: str
    good: bool


def plan_files(directory: Path, count: int, *, seed: int = 13) -> list[Planned]:
    """``count`` small distinct text files in ``directory``; every ``BAD_EVERY``-th one is
    declared as a PNG."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    planned = []
    for index in range(count):
        good = (index + 1) % BAD_EVERY != 0
        text = "".join(rng.choices(string.ascii_letters + " \n", k=rng.randint(200, 4000)))
        path = directory / f"file-{index:05d}.txt"
        path.write_text(f"chaos file {index}\n{text}\n")
        planned.append(Planned(path, "text/plain" if good else "image/png", good))
    return planned


def _retriable(error: FilepipeError) -> bool:
    if isinstance(error, StorageError):
        return error.status >= 500
    return isinstance(error, (ConnectionFailed, ServerError, RateLimited))


class Uploads:
    """Uploads ``planned`` files to ``config`` at ``rate`` a second, in the background."""

    def __init__(self, config: Config, planned: Sequence[Planned], *, rate: float) -> None:
        self.transport = RecordingTransport()
        self.client = Client(config, backoff=CLIENT_BACKOFF, transport=self.transport)
        self.planned = planned
        self.rate = rate
        self.deadline = float("inf")
        """Monotonic time after which a failing upload is given up (set once healed)."""
        self._lock = threading.Lock()
        self._done: list[tuple[Upload, float]] = []
        self._failed: list[str] = []
        self._pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="upload")
        self._futures: list[Future[None]] = []
        self._feeder = threading.Thread(target=self._feed, name="upload-feeder", daemon=True)

    def start(self) -> None:
        self._feeder.start()

    def _feed(self) -> None:
        for planned in self.planned:
            self._futures.append(self._pool.submit(self._upload, planned))
            time.sleep(1 / self.rate)  # pacing, not synchronisation

    def _upload(self, planned: Planned) -> None:
        uploader = Uploader(self.client)
        while True:
            try:
                result = uploader.upload(planned.path, content_type=planned.content_type)
            except FilepipeError as error:
                if not _retriable(error) or time.monotonic() > self.deadline:
                    with self._lock:
                        self._failed.append(f"{planned.path.name}: {error}")
                    return
                time.sleep(RETRY_PAUSE)  # a user trying again a moment later
                continue
            with self._lock:
                self._done.append((Upload(result.file.id, planned.good), time.time()))
            return

    def finished(self) -> int:
        """Uploads over (done or given up)."""
        with self._lock:
            return len(self._done) + len(self._failed)

    def wait(self, timeout: float) -> bool:
        """Wait for every upload to be over; whether they were within ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while self.finished() < len(self.planned):
            if time.monotonic() > end:
                return False
            time.sleep(0.2)
        return True

    @property
    def uploads(self) -> list[Upload]:
        with self._lock:
            return [upload for upload, _ in self._done]

    @property
    def uploaded_at(self) -> dict[str, float]:
        """File id → Unix time its upload finished."""
        with self._lock:
            return {upload.file_id: at for upload, at in self._done}

    @property
    def failures(self) -> list[str]:
        with self._lock:
            return list(self._failed)

    def close(self) -> None:
        self.deadline = 0.0
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
