"""Start-up of a function process: JSON logs and tracing, once, from the entry point.

``start_function()`` is the one call a ``functions/*/main.py`` makes at module level: the
functions-framework loads that module inside its new app's context, so the app (whose name is the
target) is instrumented before it serves a request. Servers of their own (the gateway, the local
emulators) call ``start`` from ``main``.
"""

from __future__ import annotations

from flask import Flask, current_app

from filepipe import metrics, telemetry
from filepipe.config import Settings
from filepipe.logs import configure_logging


def start(service: str, app: Flask | None = None) -> Settings:
    """Configure logging and tracing for ``service`` (``K_SERVICE`` wins); instrument ``app``."""
    settings = Settings.from_env()
    name = settings.service_name or service
    configure_logging(settings.log_level, service=name)
    telemetry.setup(name, otlp_endpoint=settings.otlp_endpoint)
    if app is not None:
        telemetry.instrument_app(app)
    return settings


def start_function() -> None:
    """``start`` for the functions-framework app being created (call from ``main.py``), and its
    ``/metrics`` server in multiprocess mode (in gunicorn's master, before the fork; see
    ``filepipe.metrics``)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = start(app.name, app)
    metrics.serve_before_fork(settings.metrics_port)
