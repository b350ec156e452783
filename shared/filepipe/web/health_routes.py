"""``GET /healthz`` and ``GET /readyz`` of a function (``filepipe.health``), as a WSGI middleware.

They answer before Flask, so they are the same on every function: an HTTP function's routing
never sees them, and an internal target (process, notify) answers them without the broker's
token (the cluster's probes send none) while still refusing every event without it. Any other
method on these paths is a 405 with ``Allow: GET``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from werkzeug.wrappers import Response

from filepipe import health, runtime
from filepipe.errors import MethodNotAllowed
from filepipe.web.bodies import json_response
from filepipe.web.limits import Environ, StartResponse, WsgiApp
from filepipe.web.problems import problem_response

_NO_STORE = {"Cache-Control": "no-store"}
_READ = frozenset({"GET", "HEAD"})


class HealthRoutes:
    """Wraps the WSGI app of the function ``function``."""

    def __init__(self, app: WsgiApp, *, function: str) -> None:
        self.app = app
        self.function = function
        self._answers: dict[str, Callable[[], Response]] = {
            health.LIVENESS_PATH: self.liveness,
            health.READINESS_PATH: self.readiness,
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        answer = self._answers.get(path)
        if answer is None:
            return self.app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in _READ:
            not_allowed = MethodNotAllowed(f"this method is not allowed on {path}", ["GET"])
            return problem_response(not_allowed, path)(environ, start_response)
        return answer()(environ, start_response)

    def liveness(self) -> Response:
        return json_response({"status": "ok"}, headers=_NO_STORE)

    def readiness(self) -> Response:
        readiness = health.check(health.probes_of(runtime.current(), self.function))
        return json_response(readiness.body, readiness.status_code, _NO_STORE)
