"""Start-up of a function's functions-framework app: logs, tracing, metrics and the HTTP edge.

``start_function()`` is the one call a ``functions/*/main.py`` makes at module level: the
functions-framework loads that module inside its new app's context, so the app (whose name is the
target) is set up before it serves a request: every refusal of the framework itself (its 404s,
405s, a request that is not a CloudEvent, a crash) answers problem+json through the one mapping,
the request limits hold before anything reads a body, CORS answers browsers of the allowed
origins (public targets), ``GET /healthz`` and ``GET /readyz`` answer
(``filepipe.web.health_routes``, without the broker's token on internal targets), and every other
path reaches the function.
"""

from __future__ import annotations

from collections.abc import Collection

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import PathConverter

from filepipe import metrics, runtime
from filepipe.errors import ProblemError
from filepipe.origins import AllowedOrigins
from filepipe.web.cors import Cors
from filepipe.web.health_routes import HealthRoutes
from filepipe.web.limits import RequestLimits
from filepipe.web.problems import response_for
from filepipe.web.routing import Api
from filepipe.web.senders import require_broker


def start_function(
    *, api: Api | None = None, internal: Collection[str] = (), body_bytes_at_least: int = 0
) -> None:
    """Set up the functions-framework app being created (call it from ``main.py``).

    ``api`` is the public HTTP API of this ``main.py``'s targets that are not ``internal``: they
    answer CORS for ``FILEPIPE_ALLOWED_ORIGINS`` (``filepipe.web.cors``). ``internal`` names the
    targets that only the broker may call (``filepipe.web.senders``). ``body_bytes_at_least``
    raises the request body limit (``FILEPIPE_MAX_REQUEST_BYTES``) for a function whose API
    takes larger bodies.

    In multiprocess mode, also serves ``/metrics`` from gunicorn's master, before the fork
    (see ``filepipe.metrics``).
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = runtime.start(app.name, app)
    app.url_map.converters["path"] = AnyPath  # before functions-framework adds its routes
    app.register_error_handler(HTTPException, _framework_error)
    app.register_error_handler(ProblemError, _problem)
    app.register_error_handler(InternalServerError, _crash)
    if app.name in internal:
        require_broker(app, settings.event_token)
    app.wsgi_app = HealthRoutes(app.wsgi_app, function=app.name)  # type: ignore[method-assign]
    app.wsgi_app = RequestLimits(  # type: ignore[method-assign]
        app.wsgi_app, max_body_bytes=max(settings.max_request_bytes, body_bytes_at_least)
    )
    if api is not None and app.name not in internal:
        origins = AllowedOrigins(settings.allowed_origins)
        cors = Cors(app.wsgi_app, origins=origins, methods_of=api.methods_of)
        app.wsgi_app = cors  # type: ignore[method-assign]
    metrics.serve_before_fork(settings.metrics_port)


class AnyPath(PathConverter):
    """functions-framework's catch-all ``/<path:path>``, matching every path: werkzeug's own
    stops at a newline (``%0A``), so such a request never reached the function's edge."""

    regex = "[^/](?:.|\n)*?"


def _framework_error(error: HTTPException) -> Response:
    return response_for(error, request.path)


def _problem(error: ProblemError) -> Response:
    """A function's own refusal (the process function's 503 naming a transient cause, say): the
    answer it chose, without Flask logging it as a crash with a traceback."""
    return response_for(error, request.path)


def _crash(error: InternalServerError) -> Response:
    return response_for(error.original_exception or error, request.path)
