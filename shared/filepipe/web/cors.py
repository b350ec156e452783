"""CORS (the Fetch standard's CORS protocol) for the public HTTP functions, as WSGI middleware.

Origins come from ``FILEPIPE_ALLOWED_ORIGINS`` (``filepipe.origins``: exact origins and
patterns; none by default). Credentials mode is not used: callers send ``Authorization``, a
header, never a cookie, so no ``Access-Control-Allow-Credentials``.

- A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) to a known
  route is answered here, before authentication: 204 with the path's methods, the request
  headers the API reads (``ALLOWED_HEADERS``) and ``Access-Control-Max-Age: 600``; from an origin
  not allowed, 403 problem+json without CORS headers. A preflight to an unknown path goes on to
  the function (its 404).
- Every other answer (problem+json included, also the request limits') to a request from an
  allowed origin carries ``Access-Control-Allow-Origin: <origin>`` and
  ``Access-Control-Expose-Headers`` (``EXPOSED_HEADERS``); an origin not allowed gets none.
- Every answer carries ``Vary: Origin``, so no cache hands one origin's answer to another.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from filepipe.errors import Forbidden
from filepipe.origins import AllowedOrigins
from filepipe.web.limits import Environ, StartResponse, WsgiApp
from filepipe.web.problems import problem_response

ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-None-Match"
EXPOSED_HEADERS = "ETag, Location, Idempotency-Replayed, Retry-After"
MAX_AGE_SECONDS = 600

MethodsOf = Callable[[Environ], Collection[str]]
"""The methods the request's path takes (none: no such route)."""


class Cors:
    """Wraps a function's WSGI app; see the module docstring."""

    def __init__(self, app: WsgiApp, *, origins: AllowedOrigins, methods_of: MethodsOf) -> None:
        self.app = app
        self.origins = origins
        self.methods_of = methods_of

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        origin: str | None = environ.get("HTTP_ORIGIN")
        allowed = origin is not None and self.origins.allows(origin)
        if (
            origin is not None
            and environ.get("REQUEST_METHOD") == "OPTIONS"
            and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
            and (methods := self.methods_of(environ))
        ):
            return self._preflight(origin, allowed, methods, environ, start_response)
        added = []
        if origin is not None and allowed:
            added = [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Expose-Headers", EXPOSED_HEADERS),
            ]

        def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            return start_response(status, [*_vary_origin(headers), *added], *exc_info)

        return self.app(environ, start)

    def _preflight(
        self,
        origin: str,
        allowed: bool,
        methods: Collection[str],
        environ: Environ,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        if not allowed:
            refusal = Forbidden(f"cross-origin requests from {origin[:200]!r} are not allowed")
            response = problem_response(refusal, environ.get("PATH_INFO"))
            response.headers["Vary"] = "Origin"
            return response(environ, start_response)
        start_response(
            "204 No Content",
            [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Methods", ", ".join(sorted(methods))),
                ("Access-Control-Allow-Headers", ALLOWED_HEADERS),
                ("Access-Control-Max-Age", str(MAX_AGE_SECONDS)),
                ("Vary", "Origin"),
            ],
        )
        return []


def _vary_origin(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with ``Origin`` added to their ``Vary``."""
    others = [(name, value) for name, value in headers if name.lower() != "vary"]
    varies = [v.strip() for n, value in headers if n.lower() == "vary" for v in value.split(",")]
    if "*" in varies or "origin" in (v.lower() for v in varies):
        return headers
    return [*others, ("Vary", ", ".join([*filter(None, varies), "Origin"]))]
