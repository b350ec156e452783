"""Tracing: one OpenTelemetry TracerProvider per process and W3C trace context across the pipeline.

``setup(service)`` (called by the entry points at start-up, never at import) installs the
provider, instruments psycopg, redis, botocore and requests, and exports spans over OTLP/HTTP
when an endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT``); without one, spans are made
(their ids still reach the logs) and dropped. ``instrument_app`` adds a Flask app. ``recording``
sends the spans to another exporter for a while (tests use an ``InMemorySpanExporter``).

A file's trace travels as a W3C ``traceparent`` string (https://www.w3.org/TR/trace-context/):
stored on its ``files`` row and with every outbox event, and sent as the CloudEvents
``traceparent`` extension, so the storage notification, which carries none, rejoins the upload's
trace (``span_from``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import Flask
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind

TRACER_NAME = "filepipe"

_lock = threading.Lock()
_provider: TracerProvider | None = None
_exporting = False


class _Fanout(SpanProcessor):
    """Forwards to a set of processors that can change at run time (``recording``)."""

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()

    def add(self, processor: SpanProcessor) -> None:
        with _lock:
            self._processors = (*self._processors, processor)

    def remove(self, processor: SpanProcessor) -> None:
        with _lock:
            self._processors = tuple(p for p in self._processors if p is not processor)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self._processors:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self._processors)


_fanout = _Fanout()


def setup(service: str, *, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install the process's tracer provider and instrumentations (idempotent: the first call
    names the service); export to ``otlp_endpoint`` (OTLP/HTTP base URL) when given."""
    global _provider, _exporting
    with _lock:
        if _provider is None:
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
            provider.add_span_processor(_fanout)
            trace.set_tracer_provider(provider)
            _instrument_libraries()
            _provider = provider
        provider = _provider
        export = bool(otlp_endpoint) and not _exporting
        _exporting = _exporting or export
    if export and otlp_endpoint:
        endpoint = otlp_endpoint.rstrip("/") + "/v1/traces"
        _fanout.add(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def _instrument_libraries() -> None:
    PsycopgInstrumentor().instrument(skip_dep_check=True)
    RedisInstrumentor().instrument()
    BotocoreInstrumentor().instrument()  # type: ignore[no-untyped-call]
    RequestsInstrumentor().instrument()


def instrument_app(app: Flask) -> None:
    """Trace every request ``app`` serves (incoming ``traceparent`` headers are continued)."""
    FlaskInstrumentor.instrument_app(app)  # type: ignore[no-untyped-call]


@contextmanager
def recording(exporter: SpanExporter, service: str = "filepipe") -> Iterator[None]:
    """Send every span ended in this process to ``exporter`` while the block runs."""
    setup(service)
    processor = SimpleSpanProcessor(exporter)
    _fanout.add(processor)
    try:
        yield
    finally:
        _fanout.remove(processor)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside any span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def context_of(traceparent: str | None) -> Context | None:
    """The context a ``traceparent`` string names (None if absent or malformed)."""
    if not traceparent:
        return None
    extracted = propagate.extract({"traceparent": traceparent})
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        return None
    return extracted


@contextmanager
def span_from(
    name: str,
    traceparent: str | None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A span continuing the trace ``traceparent`` names, linked to the current span (the
    delivery that brought the work); without a valid ``traceparent``, a child of the current."""
    parent = context_of(traceparent)
    links: list[Link] = []
    if parent is not None:
        here = trace.get_current_span().get_span_context()
        if here.is_valid:
            links.append(Link(here))
    with tracer().start_as_current_span(
        name,
        context=parent if parent is not None else context.get_current(),
        kind=kind,
        attributes=dict(attributes or {}),
        links=links,
    ) as span:
        yield span


def name_request(method: str, route: str) -> None:
    """Name the current server span after the matched route pattern (``POST /uploads``)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
