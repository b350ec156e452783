"""A queue directory for bucket notifications RabbitMQ could not take, as MinIO's ``queue_dir``.

MinIO (https://min.io/docs/minio/linux/administration/monitoring/publish-events-to-amqp.html,
``MINIO_NOTIFY_AMQP_QUEUE_DIR``) writes an event it cannot send to its queue directory and
resends it, in order, once the target is back; the object's PUT still succeeds. Here:

- a notification is published at once when nothing is queued (concurrent requests publish
  concurrently); if RabbitMQ cannot take it, or older notifications are still queued (order),
  it is written to the directory (temp file, fsync, rename, fsync of the directory) before the
  request is answered;
- a background thread resends the queued notifications oldest first, waiting with exponential
  backoff (capped) while RabbitMQ stays unreachable, and deletes each once RabbitMQ confirmed it;
- files left by an earlier run (a restart, a crash) are resent after start-up.
File names are the queueing time in nanoseconds (zero-padded), so the names sort in order.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from local.durable import fsync_directory, write_atomically
from local.s3_amqp import NotPublished
from local.s3_notifier import Publisher

log = logging.getLogger(__name__)

SUFFIX = ".json"


@dataclass(frozen=True)
class Queued:
    """One notification waiting in the directory."""

    body: bytes
    bucket: str
    key: str
    event_name: str

    def encode(self) -> bytes:
        return json.dumps(
            {
                "bucket": self.bucket,
                "key": self.key,
                "event_name": self.event_name,
                "body": base64.b64encode(self.body).decode(),
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Queued:
        raw = json.loads(data)
        return cls(
            base64.b64decode(raw["body"]), str(raw["bucket"]), str(raw["key"]), raw["event_name"]
        )


class QueuedPublisher:
    """Publishes through ``target``; keeps in ``directory`` what it cannot publish now."""

    def __init__(
        self,
        target: Publisher,
        directory: Path,
        *,
        first_delay: float = 0.5,
        max_delay: float = 10.0,
    ) -> None:
        self._target = target
        self._directory = directory
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._lock = threading.Lock()
        """Serialises queueing against resending, so the order of the files holds."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_name = 0
        self._thread = threading.Thread(target=self._run, name="s3-queue", daemon=True)
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def backlog(self) -> list[Path]:
        """The queued notifications, oldest first."""
        return sorted(self._directory.glob(f"*{SUFFIX}"))

    def publish(self, body: bytes, *, bucket: str, key: str, event_name: str) -> None:
        """Publish now, or queue on disk (durably) before returning.

        The lock is held to look at the backlog and to write, not while publishing: concurrent
        requests publish (and wait for their confirms) at once, none after another's. Only
        concurrent requests can overtake each other; a request that starts after one was queued
        finds the backlog and queues behind it."""
        with self._lock:
            queued = bool(self.backlog())
        if queued:
            log.info("notification for %s/%s queued behind older ones", bucket, key)
        else:
            try:
                self._target.publish(body, bucket=bucket, key=key, event_name=event_name)
                return
            except NotPublished as exc:
                log.warning("notification for %s/%s queued: %s", bucket, key, exc)
        with self._lock:
            self._write(Queued(body, bucket, key, event_name))
        self._wake.set()

    def _write(self, queued: Queued) -> None:
        self._last_name = max(time.time_ns(), self._last_name + 1)
        write_atomically(self._directory / f"{self._last_name:020d}{SUFFIX}", queued.encode())

    def _run(self) -> None:
        delay = self._first_delay
        while not self._stop.is_set():
            if self._resend_all():
                delay = self._first_delay
                self._wake.wait()
                self._wake.clear()
            else:
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_delay)

    def _resend_all(self) -> bool:
        """Resend every queued notification in order; False at the first one that fails."""
        while not self._stop.is_set():
            with self._lock:
                backlog = self.backlog()
                if not backlog:
                    return True
                path = backlog[0]
                try:
                    queued = Queued.decode(path.read_bytes())
                except (ValueError, KeyError) as exc:
                    log.error("dropped unreadable queued notification %s: %s", path.name, exc)
                    path.unlink(missing_ok=True)
                    continue
                try:
                    self._target.publish(
                        queued.body,
                        bucket=queued.bucket,
                        key=queued.key,
                        event_name=queued.event_name,
                    )
                except NotPublished as exc:
                    log.warning("%d queued notification(s) wait: %s", len(backlog), exc)
                    return False
                path.unlink(missing_ok=True)
                fsync_directory(self._directory)
            log.info("resent queued notification for %s/%s", queued.bucket, queued.key)
        return True
