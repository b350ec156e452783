"""Every error the client raises, one tree::

FilepipeError                  base of them all
 ├── ConfigurationError        no URL or API key, or a malformed URL (also a ValueError)
 ├── ConnectionFailed          the server or storage could not be reached (refused, timeout)
 ├── ApiError                  the API answered with an error (status, detail, problem)
 │    ├── AuthenticationError  401, 403: the API key was refused
 │    ├── RequestRefused       400, 404, 409, 413, 415, 422 and any other 4xx
 │    │    ├── NotFound        404
 │    │    └── Conflict        409
 │    ├── RateLimited          429, after honouring Retry-After a few times
 │    └── ServerError          5xx, after retries
 ├── StorageError              object storage refused a presigned request
 └── IntegrityError            bytes that differ from their SHA-256 (also a ValueError)
"""

from __future__ import annotations

from typing import Any


class FilepipeError(Exception):
    """Base of every error of ``filepipe_client``."""


class ConfigurationError(FilepipeError, ValueError):
    """The client is not configured: no URL or API key, or a malformed URL."""


class ConnectionFailed(FilepipeError):
    """``url`` could not be reached: connection refused, DNS failure or timeout."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(FilepipeError):
    """The API answered ``status`` with an RFC 9457 problem (``problem``, maybe empty)."""

    def __init__(self, status: int, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problem = problem or {}


class AuthenticationError(ApiError):
    """401 or 403: the API key is missing, unknown, revoked, expired or not allowed."""


class RequestRefused(ApiError):
    """A 4xx other than 401, 403 and 429: the request itself was refused."""


class NotFound(RequestRefused):
    """404: no such file for this API key's tenant."""


class Conflict(RequestRefused):
    """409: the file is not in a state that allows the request."""


class RateLimited(ApiError):
    """429, still after waiting as ``Retry-After`` said."""


class ServerError(ApiError):
    """5xx, still after retries."""


class StorageError(FilepipeError):
    """Object storage refused a presigned request with ``status`` (S3 error ``code``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"storage refused the request: {status} {code} {message}".strip())
        self.status = status
        self.code = code


class IntegrityError(FilepipeError, ValueError):
    """Bytes differ from the SHA-256 they should have."""


def api_error(status: int, problem: dict[str, Any], text: str) -> ApiError:
    """The ``ApiError`` subclass for an error answer (``problem``: its JSON body, if any)."""
    detail = str(problem.get("detail") or problem.get("title") or text.strip() or status)
    faults = problem.get("errors")
    if isinstance(faults, list) and faults:
        detail += ": " + "; ".join(
            f"{fault.get('field', '?')}: {fault.get('message', 'invalid')}"
            for fault in faults
            if isinstance(fault, dict)
        )
    if status in (401, 403):
        return AuthenticationError(status, detail, problem)
    if status == 429:
        return RateLimited(status, detail, problem)
    if status >= 500:
        return ServerError(status, detail, problem)
    kind = {404: NotFound, 409: Conflict}.get(status, RequestRefused)
    return kind(status, detail, problem)
