"""Errors shared by every filepipe module.

::

    FilepipeError
    ├── ConfigError                (also ValueError) bad or missing configuration
    ├── DependencyError            a backing service (PostgreSQL, S3, broker…) failed; retry later
    └── ProblemError               an HTTP answer: status, title, detail (RFC 9457 problem+json)
        ├── BadRequest             400
        ├── Unauthorized           401
        ├── Forbidden              403
        ├── NotFound               404
        ├── MethodNotAllowed       405
        ├── Conflict               409
        ├── Gone                   410
        ├── PayloadTooLarge        413
        ├── UriTooLong             414
        ├── UnsupportedMediaType   415
        ├── UnprocessableContent   422
        ├── TooManyRequests        429 (with Retry-After)
        ├── HeaderFieldsTooLarge   431
        ├── InternalError          500
        └── ServiceUnavailable     503

``filepipe.web.problems`` turns any ``ProblemError`` (and ``DependencyError``, as 503) into a
problem+json response, in one place.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FilepipeError(Exception):
    """Base of every error raised by filepipe."""


class ConfigError(FilepipeError, ValueError):
    """The configuration is invalid."""


class DependencyError(FilepipeError):
    """A backing service failed in a way that retrying later may fix."""


class ProblemError(FilepipeError):
    """An error with an HTTP status, rendered as ``application/problem+json``."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(ProblemError):
    status = 400
    title = "Bad Request"


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer realm="filepipe"'


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    status = 404
    title = "Not Found"


class MethodNotAllowed(ProblemError):
    status = 405
    title = "Method Not Allowed"

    def __init__(self, detail: str, allowed: list[str]) -> None:
        super().__init__(detail)
        self.headers["Allow"] = ", ".join(sorted(allowed))


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class Gone(ProblemError):
    status = 410
    title = "Gone"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Content Too Large"


class UriTooLong(ProblemError):
    status = 414
    title = "URI Too Long"


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported Media Type"


class UnprocessableContent(ProblemError):
    status = 422
    title = "Unprocessable Content"


class TooManyRequests(ProblemError):
    """Over a rate limit or a cap: retrying after ``retry_after`` seconds may succeed."""

    status = 429
    title = "Too Many Requests"

    def __init__(self, detail: str, *, retry_after: int, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(max(1, retry_after))


class HeaderFieldsTooLarge(ProblemError):
    status = 431
    title = "Request Header Fields Too Large"


class InternalError(ProblemError):
    status = 500
    title = "Internal Server Error"


class ServiceUnavailable(ProblemError):
    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str, *, retry_after: int = 5, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["Retry-After"] = str(retry_after)
