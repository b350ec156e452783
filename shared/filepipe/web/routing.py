"""Routing of an HTTP function's requests: werkzeug ``Map``/``Rule``, authentication, parameters.

One ``Api`` per function. For every request it:

1. matches the path and method (no match: 404; another method: 405 with ``Allow``);
2. authenticates the caller unless the route is public (401 comes before any 400): an upload
   token (``Bearer fput_…``, ``filepipe.upload_tokens``) is a 403 on a route that does not take
   one, and is verified here on one that does; anything else goes to the function's
   authenticator;
3. refuses malformed path ids (a UUID in canonical form) and query parameters the route does not
   take, given twice or empty (a parameter of a route's open prefix may be empty): 400, the same
   rule on every route;
4. calls the handler with the request, the caller's ``tenant``, its upload ``token`` (routes
   that take one; ``None`` for an API key) and the path's ids (``UUID`` or, for ``segments``,
   ``str``);
5. answers any exception with its problem (``filepipe.web.problems``), and counts the request
   (``filepipe_http_requests_total`` by route pattern, method and status) and its latency.

Paths are written as in the OpenAPI document (``/files/{file_id}``), which is also the metrics'
``route`` label; every ``{name}`` is an id, but those a route declares ``segments``: any one
path segment but the literal segments of the Api's paths (so ``GET /s3/multipart/{a}/complete``
is the completion route's 405, not a part ``complete``), as a string: S3's UploadId and part
number in Companion's routes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from flask import Request, Response
from werkzeug.datastructures import MultiDict
from werkzeug.routing import BaseConverter, Map, Rule

from filepipe import logs, metrics, runtime, telemetry, upload_tokens
from filepipe.errors import BadRequest, Forbidden
from filepipe.web.problems import response_for

Handler = Callable[..., Response]
Authenticator = Callable[[Request], str]
"""Resolves the caller's credentials to its tenant, or raises ``Unauthorized``."""

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Malformed:
    """A path segment where an id was expected that is not one."""

    value: str


class IdConverter(BaseConverter):
    """Any one path segment; a canonical UUID becomes a ``UUID``, anything else ``Malformed``."""

    def to_python(self, value: str) -> uuid.UUID | Malformed:
        try:
            parsed = uuid.UUID(value)
        except ValueError:
            return Malformed(value)
        return parsed if str(parsed) == value.lower() else Malformed(value)

    def to_url(self, value: Any) -> str:
        return str(value)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """As in the OpenAPI document: ``/files/{file_id}``."""
    handler: Handler = field(compare=False)
    query: frozenset[str] = frozenset()
    """The query parameters the route takes; any other is a 400."""
    query_prefixes: tuple[str, ...] = ()
    """Prefixes of further parameters the route takes, such as ``metadata[``."""
    segments: frozenset[str] = frozenset()
    """Path parameters that are any one segment (a ``str``), not ids."""
    public: bool = False
    """No authentication (the handler gets no ``tenant``)."""
    upload_tokens: bool = False
    """Upload tokens are taken too: the handler gets ``token`` (``None`` for an API key)."""


def segment_converter(paths: Sequence[str]) -> type[BaseConverter]:
    """A converter of any one path segment but the literal segments of ``paths``."""
    words = sorted({part for path in paths for part in path.split("/") if "{" not in part and part})
    excluded = "|".join(re.escape(word) for word in words)

    class SegmentConverter(BaseConverter):
        regex = f"(?!(?:{excluded})$)[^/]+" if words else "[^/]+"

    return SegmentConverter


class Api:
    """The HTTP edge of one function: ``api(request)`` is its functions-framework target body."""

    def __init__(self, routes: Sequence[Route], *, authenticate: Authenticator) -> None:
        self.routes = tuple(routes)
        self._authenticate = authenticate
        self._map = Map(
            [Rule(_rule_path(route), endpoint=route, methods=[route.method]) for route in routes],
            converters={
                "id": IdConverter,
                "segment": segment_converter([route.path for route in routes]),
            },
            strict_slashes=False,
            merge_slashes=False,
        )

    def __call__(self, request: Request) -> Response:
        start = perf_counter()
        matched: list[str] = [metrics.UNMATCHED_ROUTE]
        with logs.bound():
            try:
                response = self._dispatch(request, matched)
            except Exception as exc:  # noqa: BLE001 - the one boundary: every error is a problem
                response = response_for(exc, request.path)
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        recorded = metrics.get()
        recorded.http_requests.labels(matched[0], method, str(response.status_code)).inc()
        recorded.http_request_duration.labels(matched[0], method).observe(perf_counter() - start)
        return response

    def methods_of(self, environ: dict[str, Any]) -> frozenset[str]:
        """The methods the request's path takes (``HEAD`` with ``GET``); none for no route."""
        return frozenset(self._map.bind_to_environ(environ).allowed_methods())

    def _dispatch(self, request: Request, matched: list[str]) -> Response:
        route, matched_params = self._map.bind_to_environ(request.environ).match()
        assert isinstance(route, Route)
        params = dict(matched_params)
        matched[0] = route.path
        telemetry.name_request(request.method, route.path)
        if not route.public:
            params.update(self._caller(route, request))
        refuse_malformed(params, request.args, route.query, route.query_prefixes)
        return route.handler(request, **params)

    def _caller(self, route: Route, request: Request) -> dict[str, Any]:
        """The handler's ``tenant`` (and ``token``, for a route taking upload tokens)."""
        text = upload_tokens.in_header(request.headers.get("Authorization"))
        if text is not None and not route.upload_tokens:
            raise Forbidden("an upload token can't be used here; use an API key")
        if not route.upload_tokens:
            return {"tenant": self._authenticate(request)}
        if text is None:
            return {"tenant": self._authenticate(request), "token": None}
        token = upload_tokens.decode(text, runtime.current().settings.upload_token_secrets)
        return {"tenant": token.tenant, "token": token}


def _rule_path(route: Route) -> str:
    def rule(match: re.Match[str]) -> str:
        name = match[1]
        return f"<segment:{name}>" if name in route.segments else f"<id:{name}>"

    return _PARAMETER.sub(rule, route.path)


def refuse_malformed(
    params: dict[str, Any],
    args: MultiDict[str, str],
    accepted: frozenset[str],
    prefixes: tuple[str, ...] = (),
) -> None:
    """A 400 listing every malformed id and every unknown, repeated or empty query parameter."""
    errors = [
        {"field": name, "message": "not a UUID"}
        for name, value in params.items()
        if isinstance(value, Malformed)
    ]
    for name in sorted(set(args)):
        open_prefix = name.startswith(prefixes)
        if name not in accepted and not open_prefix:
            errors.append({"field": name[:80], "message": "unknown parameter"})
        elif len(args.getlist(name)) > 1:
            errors.append({"field": name[:80], "message": "given more than once"})
        elif not args[name] and not open_prefix:
            errors.append({"field": name, "message": "must not be empty"})
    if errors:
        raise BadRequest("the request's path or query parameters are invalid", errors=errors)


def parse_bounded_int(value: str, *, low: int, high: int) -> int | None:
    """``value`` as a decimal integer from ``low`` to ``high`` (ASCII digits only), or ``None``."""
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        return None
    number = int(value)
    return number if low <= number <= high else None


def bounded_int(name: str, value: str | None, *, low: int, high: int, default: int) -> int:
    """A query parameter that is a decimal integer from ``low`` to ``high``, or a 400."""
    if value is None:
        return default
    number = parse_bounded_int(value, low=low, high=high)
    if number is None:
        raise BadRequest(
            f"{name} must be an integer from {low} to {high}",
            errors=[{"field": name, "message": f"must be an integer from {low} to {high}"}],
        )
    return number
