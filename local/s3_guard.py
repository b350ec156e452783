"""The local S3 server's gate: what MinIO would refuse never reaches moto.

moto's S3 server verifies no signature, expiry, POST policy or checksum, and checks a
conditional write apart from storing it. This WSGI middleware sits in front of moto's S3 app
(inside ``local.s3_notifier.NotifyingApp``, so a refused request stores nothing and publishes
no notification) and, for each request:

1. lets ``OPTIONS`` through (browsers' preflights are answered before, by ``local.s3_cors``);
2. refuses bodies it cannot check: chunked without ``Content-Length`` (411
   ``MissingContentLength``, as MinIO) and aws-chunked ``STREAMING-*`` payloads (501
   ``NotImplemented``: their chunk signatures are not verified here);
3. authenticates (``local.s3_auth``): a presigned URL or an ``Authorization`` header, or, for a
   browser form ``POST /<bucket>``, its POST policy (``local.s3_post_policy``); an anonymous
   request gets 403 ``AccessDenied``, as from a private MinIO bucket;
4. for PutObject, CopyObject and CompleteMultipartUpload with ``If-None-Match: *``, answers 412
   ``PreconditionFailed`` if the key exists, before reading the body;
5. reads the body once (``local.s3_body``) into a spooled temporary file while hashing it, and
   checks its length and digests; moto is handed the spooled copy;
6. hands the request to moto; a write to an object holds that key's lock, and a conditional
   one checks again under it, so no other write to the key slips in between check and store.

Refusals are S3's XML error document with MinIO's code and status (``local.s3_errors``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import IO, Any
from urllib.parse import quote, unquote
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.http import parse_options_header
from werkzeug.wsgi import ClosingIterator

from local import s3_body, s3_post_policy
from local import s3_errors as errors
from local.s3_auth import Authenticator, SignedRequest
from local.s3_notifier import PRINCIPAL_KEY, REQUEST_ID_KEY

log = logging.getLogger(__name__)

ObjectExists = Callable[[str, str], bool]
"""``(bucket, key)`` → whether the key holds an object now."""

NOT_SUB_RESOURCES = frozenset({"x-id"})
"""Query parameters that do not make a PUT on a key something else than PutObject."""
LOCK_STRIPES = 64


@dataclass(frozen=True)
class Target:
    """The bucket and key (decoded; empty when absent) a request addresses."""

    bucket: str
    key: str


def target_of(host: str, raw_path: str) -> Target:
    """Path-style for IP addresses, ``localhost`` and dot-less hosts, else virtual-host style.

    The same rule moto follows (``S3Response.subdomain_based_buckets``), so both agree.
    """
    path = unquote(raw_path)
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    path_style = (
        not name
        or name.startswith(("localhost", "["))
        or "." not in name
        or name.replace(".", "").isdigit()
    )
    if path_style:
        bucket, _, key = path.lstrip("/").partition("/")
        return Target(bucket, key)
    return Target(name.split(".", 1)[0], path[1:] if path.startswith("/") else path)


class KeyLocks:
    """A lock per (bucket, key), striped: writes to one key run one at a time."""

    def __init__(self, stripes: int = LOCK_STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, target: Target) -> Iterator[None]:
        with self._locks[hash((target.bucket, target.key)) % len(self._locks)]:
            yield


class GuardApp:
    """Checks each request as MinIO would before moto's app sees it."""

    def __init__(
        self,
        app: WSGIApplication,
        authenticator: Authenticator,
        exists: ObjectExists,
        *,
        locks: KeyLocks | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.exists = exists
        self.locks = locks or KeyLocks()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = SignedRequest.from_environ(environ)
        target = target_of(request.headers.get("host", ""), request.raw_path)
        try:
            return self._handle(environ, start_response, request, target)
        except errors.S3Error as error:
            return self._refuse(environ, start_response, request, target, error)

    def _handle(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        request: SignedRequest,
        target: Target,
    ) -> Iterable[bytes]:
        if request.method == "OPTIONS":
            return self.app(environ, start_response)
        length = _content_length(environ, request)
        payload = request.headers.get("x-amz-content-sha256", "")
        encoding = request.headers.get("content-encoding", "")
        if payload.startswith("STREAMING-") or "aws-chunked" in encoding:
            raise errors.NOT_IMPLEMENTED("aws-chunked payloads are not verified locally")

        if self._is_form_upload(request, target):
            return self._form_upload(environ, start_response, request, target, length)

        sender = self.authenticator.authenticate(request)
        if sender is None:
            raise errors.ACCESS_DENIED()
        environ[PRINCIPAL_KEY] = sender.access_key
        writes = _writes_object(request, target)
        create_only = writes and request.headers.get("if-none-match", "").strip() == "*"
        if create_only and self.exists(target.bucket, target.key):
            raise errors.PRECONDITION_FAILED()

        declared = s3_body.Declared(
            length=length,
            sha256_hex=sender.payload_sha256,
            md5=s3_body.declared_md5(request.headers.get("content-md5")),
            checksum=s3_body.declared_checksum(request.headers),
        )
        body = s3_body.spool(environ["wsgi.input"], declared)
        _replace_body(environ, body, length)
        if not writes:
            return ClosingIterator(self.app(environ, start_response), body.close)
        with self.locks.hold(target):
            if create_only and self.exists(target.bucket, target.key):
                body.close()
                raise errors.PRECONDITION_FAILED()
            return _completed(self.app, environ, start_response, body)

    @staticmethod
    def _is_form_upload(request: SignedRequest, target: Target) -> bool:
        media_type, _ = parse_options_header(request.headers.get("content-type", ""))
        return (
            request.method == "POST"
            and not target.key
            and media_type == "multipart/form-data"
            and not request.header_signed
            and not request.presigned
        )

    def _form_upload(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        request: SignedRequest,
        target: Target,
        length: int,
    ) -> Iterable[bytes]:
        _, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get("boundary", "")
        if not boundary:
            raise errors.MALFORMED_POST_REQUEST("no multipart boundary")
        body = s3_body.spool(environ["wsgi.input"], s3_body.Declared(length=length))
        try:
            form = s3_post_policy.read_form(body, boundary.encode("latin-1"))
            now = datetime.fromtimestamp(self.authenticator.clock(), UTC)
            sender = s3_post_policy.verify(form, target.bucket, self.authenticator, now)
        except BaseException:
            body.close()
            raise
        environ[PRINCIPAL_KEY] = sender.access_key
        body.seek(0)
        _replace_body(environ, body, length)
        key = form.value("key")
        origin = f"{environ.get('wsgi.url_scheme', 'http')}://{request.headers.get('host', '')}"
        location = f"{origin}/{target.bucket}/{quote(key)}"
        stored = [("ETag", f'"{form.md5.hexdigest()}"'), ("Location", location)]

        def answer(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            added = stored if status.startswith("2") else []
            return start_response(status, [*headers, *added], *exc)

        with self.locks.hold(Target(target.bucket, key)):
            return _completed(self.app, environ, answer, body)

    def _refuse(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        request: SignedRequest,
        target: Target,
        error: errors.S3Error,
    ) -> Iterable[bytes]:
        resource = unquote(request.raw_path)
        log.info(
            "refused %s %s: %d %s (%s)",
            request.method,
            resource,
            error.status,
            error.code,
            error.message,
        )
        body = errors.error_document(
            error,
            resource=resource,
            request_id=str(environ.get(REQUEST_ID_KEY, "")),
            region=self.authenticator.region,
            bucket=target.bucket,
            key=target.key,
        )
        start_response(
            f"{error.status} {HTTPStatus(error.status).phrase}",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [] if request.method == "HEAD" else [body]


def _content_length(environ: WSGIEnvironment, request: SignedRequest) -> int:
    """The body's declared length; 411 when a body comes without one (chunked)."""
    value = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not value:
        if environ.get("wsgi.input_terminated") or "transfer-encoding" in request.headers:
            raise errors.MISSING_CONTENT_LENGTH()
        return 0
    if not value.isdigit():
        raise errors.MISSING_CONTENT_LENGTH()
    return int(value)


def _writes_object(request: SignedRequest, target: Target) -> bool:
    """PutObject or CopyObject (PUT on a key), or CompleteMultipartUpload."""
    if not target.bucket or not target.key:
        return False
    names = {name for name in request.query() if not name.startswith("X-Amz-")}
    if request.method == "PUT":
        return not names - NOT_SUB_RESOURCES
    return request.method == "POST" and "uploadId" in names


def _replace_body(environ: WSGIEnvironment, body: IO[bytes], length: int) -> None:
    environ["wsgi.input"] = body
    environ["CONTENT_LENGTH"] = str(length)
    environ.pop("wsgi.input_terminated", None)


def _completed(
    app: WSGIApplication, environ: WSGIEnvironment, start_response: StartResponse, body: IO[bytes]
) -> list[bytes]:
    """Run ``app`` to the end (its write done), close the request ``body``, return the answer."""
    try:
        with closing(ClosingIterator(app(environ, start_response))) as response:
            return list(response)
    finally:
        body.close()
