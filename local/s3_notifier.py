"""WSGI middleware around moto's S3 app: one MinIO notification per object created.

moto calls ``moto.s3.notifications.send_event`` from its backend whenever it stores an object:
``s3:ObjectCreated:Put`` (PUT), ``…:Post`` (browser POST form upload), ``…:Copy`` (PUT with
``x-amz-copy-source``) and ``…:CompleteMultipartUpload`` (after an internal Put for the same
object), and never for UploadPart or bucket operations. ``install_hook`` wraps that function so
that, during a request this middleware handles, each call is recorded for the request's thread;
the last event per object wins, so a completed multipart upload notifies once.

Once moto has answered, and only if its status is 2xx, each created object is handed to the
``Keeper`` (``local.s3_store`` writes it to disk) and then the middleware builds the notification
(``local.minio_events``) and publishes it, before the response leaves, so a client that sees its
200 knows the notification is on RabbitMQ. Size, ETag and content type come from the ``FakeKey``
moto passed to the hook, read after moto finished the request (it sets metadata after storing):
in-process, no extra round trip, and the exact version this request wrote, which a HEAD on the
server could not guarantee if another client overwrote the key meanwhile.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.s3 import notifications as moto_notifications
from moto.s3.models import FakeKey

from local.minio_events import PRINCIPAL, CreatedObject, Origin, Request, encode, notification

log = logging.getLogger(__name__)

OBJECT_CREATED = "s3:ObjectCreated:"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
"""What moto stores (and S3 answers) when a PUT names no content type."""

MOTO_REQUEST_ID = "x-amzn-requestid"
"""moto's request id header; S3 and MinIO send ``x-amz-request-id`` (notifications carry it)."""

Created = dict[tuple[str, str], tuple[str, FakeKey]]
"""(bucket, key) → (event name, stored object), for one request."""

REQUEST_ID_KEY = "local.s3.request_id"
"""WSGI environ key: the request id this middleware answers with (for error documents)."""
PRINCIPAL_KEY = "local.s3.principal"
"""WSGI environ key: the access key the request was verified with (set by ``local.s3_guard``)."""

_current = threading.local()


class Publisher(Protocol):
    def publish(self, body: bytes, *, bucket: str, key: str, event_name: str) -> None: ...


class Keeper(Protocol):
    """Keeps a created object (durably) before it is announced."""

    def save(self, bucket: str, key: FakeKey) -> None: ...


class Clock:
    """Unix time in nanoseconds, strictly increasing across threads (MinIO's ids and sequencer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return self._last


def install_hook() -> None:
    """Wrap moto's ``send_event`` (once) so that object creations are recorded per request."""
    original = moto_notifications.send_event
    if getattr(original, "filepipe_hook", False):
        return

    @functools.wraps(original)
    def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        original(account_id, event_name, bucket, key)
        created: Created | None = getattr(_current, "created", None)
        name = str(getattr(event_name, "value", event_name))
        if created is not None and name.startswith(OBJECT_CREATED) and key is not None:
            created[(bucket.name, key.name)] = (name, key)

    send_event.filepipe_hook = True  # type: ignore[attr-defined]
    moto_notifications.send_event = send_event


@contextmanager
def _recording() -> Iterator[Created]:
    created: Created = {}
    _current.created = created
    try:
        yield created
    finally:
        del _current.created


class NotifyingApp:
    """Publishes a MinIO notification for each object a successful request created."""

    def __init__(
        self,
        app: WSGIApplication,
        publisher: Publisher,
        origin: Origin,
        clock: Clock,
        keeper: Keeper | None = None,
    ) -> None:
        install_hook()
        self.app = app
        self.keeper = keeper
        self.publisher = publisher
        self.origin = origin
        self.clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request_id = f"{self.clock.next():X}"
        environ[REQUEST_ID_KEY] = request_id
        statuses: list[str] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            kept = [(name, value) for name, value in headers if name.lower() != MOTO_REQUEST_ID]
            return start_response(status, [*kept, ("x-amz-request-id", request_id)], exc_info)

        with _recording() as created:
            response = self.app(environ, capture)
        if created and statuses and statuses[-1].startswith("2"):
            request = Request(
                request_id=request_id,
                source_ip=str(environ.get("REMOTE_ADDR", "")),
                user_agent=str(environ.get("HTTP_USER_AGENT", "")),
                principal=str(environ.get(PRINCIPAL_KEY, PRINCIPAL)),
            )
            for (bucket, _), (event_name, key) in created.items():
                if self.keeper is not None:
                    self.keeper.save(bucket, key)
                self._notify(event_name, bucket, key, request)
        return response

    def _notify(self, event_name: str, bucket: str, key: FakeKey, request: Request) -> None:
        metadata = {str(name): str(value) for name, value in key.metadata.items()}
        obj = CreatedObject(
            event_name=event_name,
            bucket=bucket,
            key=key.name,
            size=key.size,
            etag=key.etag,
            content_type=metadata.get("content-type", DEFAULT_CONTENT_TYPE),
            headers=metadata,
        )
        body = notification(obj, request, self.origin, nanos=self.clock.next())
        log.info("%s %s/%s (%d bytes)", event_name, obj.bucket, obj.key, obj.size)
        self.publisher.publish(encode(body), bucket=obj.bucket, key=obj.key, event_name=event_name)
