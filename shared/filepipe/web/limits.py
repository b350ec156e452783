"""Request limits enforced before anything reads the request (a WSGI middleware).

functions-framework reads every request body in an after-request hook, whatever the route, so
the limits must hold before Flask sees the request. Refused, as problem+json:

- a request target longer than ``MAX_TARGET_BYTES``: 414;
- a header line longer than ``MAX_HEADER_BYTES``, or headers adding up to more than
  ``MAX_HEADERS_BYTES``: 431;
- a body over the limit (``FILEPIPE_MAX_REQUEST_BYTES``): 413 from ``Content-Length`` alone,
  without reading it (and the connection is closed); a chunked body is read up to the limit and
  refused as soon as it passes it.

``filepipe.server`` runs gunicorn with limits above these, so these answers are the ones clients
see (gunicorn's own are plain text).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from filepipe.errors import (
    BadRequest,
    HeaderFieldsTooLarge,
    PayloadTooLarge,
    ProblemError,
    UriTooLong,
)
from filepipe.web.problems import problem_response

MAX_TARGET_BYTES = 8192
MAX_HEADER_BYTES = 8192
MAX_HEADERS_BYTES = 32 * 1024
_READ_CHUNK = 64 * 1024

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class RequestLimits:
    """Wraps a WSGI app; see the module docstring."""

    def __init__(self, app: WsgiApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        try:
            self._check(environ)
        except ProblemError as problem:
            response = problem_response(problem, None)
            if isinstance(problem, PayloadTooLarge):
                response.headers["Connection"] = "close"
            return response(environ, start_response)
        return self.app(environ, start_response)

    def _check(self, environ: Environ) -> None:
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if target is None:
            query = environ.get("QUERY_STRING", "")
            target = environ.get("PATH_INFO", "") + ("?" + query if query else "")
        if len(target) > MAX_TARGET_BYTES:
            raise UriTooLong(f"the request target must be at most {MAX_TARGET_BYTES} bytes")
        total = 0
        for name, value in environ.items():
            if name.startswith("HTTP_") or name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                size = len(name) + len(str(value))
                if size > MAX_HEADER_BYTES:
                    raise HeaderFieldsTooLarge(
                        f"each header must be at most {MAX_HEADER_BYTES} bytes"
                    )
                total += size
        if total > MAX_HEADERS_BYTES:
            raise HeaderFieldsTooLarge(f"the headers must be at most {MAX_HEADERS_BYTES} bytes")
        self._check_body(environ)

    def _check_body(self, environ: Environ) -> None:
        declared = environ.get("CONTENT_LENGTH") or ""
        too_large = PayloadTooLarge(
            f"the request body must be at most {self.max_body_bytes} bytes",
            max_bytes=self.max_body_bytes,
        )
        if declared:
            if not (declared.isascii() and declared.isdigit()):
                raise BadRequest("Content-Length must be a decimal number of bytes")
            if int(declared) > self.max_body_bytes:
                raise too_large
            return
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return
        stream, body = environ["wsgi.input"], bytearray()
        while chunk := stream.read(_READ_CHUNK):
            body += chunk
            if len(body) > self.max_body_bytes:
                raise too_large
        environ["wsgi.input"] = io.BytesIO(bytes(body))
        environ["CONTENT_LENGTH"] = str(len(body))
