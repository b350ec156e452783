"""CORS of the local S3 server, as MinIO's global CORS (``MINIO_API_CORS_ALLOW_ORIGIN``) answers
browsers, for the origins of ``FILEPIPE_ALLOWED_ORIGINS`` (``filepipe.origins``).

A WSGI middleware in front of ``local.s3_guard`` (inside ``local.s3_notifier``, which gives every
answer its request id):

- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an allowed
  origin for ``PUT``, ``POST``, ``GET`` or ``HEAD`` is answered 200 with those methods, the
  requested headers (any) and a max-age; any other preflight gets 403 ``AccessForbidden`` (S3's
  answer) without CORS headers;
- every other answer to an allowed origin, refusals included, carries
  ``Access-Control-Allow-Origin`` and exposes ``ETag`` and the checksum headers, so a page can
  read what it needs to complete a multipart upload. Credentials mode is not offered: presigned
  URLs carry their signature.

These are the server's only CORS headers: moto's app answers every origin (``flask_cors``, and
bucket CORS rules), and its own are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from filepipe.origins import AllowedOrigins
from local import s3_errors as errors
from local.s3_notifier import REQUEST_ID_KEY

METHODS = ("GET", "HEAD", "POST", "PUT")
EXPOSED_HEADERS = ", ".join(
    [
        "ETag",
        "x-amz-checksum-crc32",
        "x-amz-checksum-crc32c",
        "x-amz-checksum-crc64nvme",
        "x-amz-checksum-sha1",
        "x-amz-checksum-sha256",
        "x-amz-checksum-type",
        "x-amz-request-id",
        "x-amz-version-id",
    ]
)
MAX_AGE_SECONDS = 600


class CorsApp:
    """Wraps the S3 server's WSGI app; see the module docstring."""

    def __init__(self, app: WSGIApplication, origins: AllowedOrigins, *, region: str) -> None:
        self.app = app
        self.origins = origins
        self.region = region

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        origin: str | None = environ.get("HTTP_ORIGIN")
        allowed = origin is not None and self.origins.allows(origin)
        requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD")
        if origin is not None and environ.get("REQUEST_METHOD") == "OPTIONS" and requested:
            if allowed and requested.upper() in METHODS:
                return self._preflight(origin, environ, start_response)
            return self._refuse(environ, start_response)
        added = [("Vary", "Origin")]
        if origin is not None and allowed:
            added += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Expose-Headers", EXPOSED_HEADERS),
            ]

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            kept = [(name, value) for name, value in headers if not _is_cors(name)]
            return start_response(status, [*kept, *added], *exc_info)

        return self.app(environ, start)

    @staticmethod
    def _preflight(
        origin: str, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        headers = [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", ", ".join(METHODS)),
            ("Access-Control-Max-Age", str(MAX_AGE_SECONDS)),
            ("Vary", "Origin, Access-Control-Request-Headers"),
            ("Content-Length", "0"),
        ]
        if requested_headers := environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS"):
            headers.append(("Access-Control-Allow-Headers", requested_headers))
        start_response("200 OK", headers)
        return []

    def _refuse(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        body = errors.error_document(
            errors.CORS_FORBIDDEN(),
            resource=str(environ.get("PATH_INFO", "")),
            request_id=str(environ.get(REQUEST_ID_KEY, "")),
            region=self.region,
        )
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]


def _is_cors(name: str) -> bool:
    """An ``Access-Control-*`` or ``Vary`` header (moto's are only for its CORS)."""
    lowered = name.lower()
    return lowered.startswith("access-control-") or lowered == "vary"
