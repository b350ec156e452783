"""Logging: one JSON object per line on stdout, with service, file, tenant and trace ids.

Every record carries ``time``, ``level``, ``logger``, ``message``, ``function`` (the service
name given to ``configure_logging``), ``file_id`` and ``tenant`` when a handler has bound them
(``bound()`` around a request or event, ``bind()`` once known) and ``trace_id``/``span_id`` of
the current OpenTelemetry span. Secrets are masked in the final line whatever their source
(message, extra fields, exception text): bearer tokens, API keys, ``whsec_`` webhook secrets,
SigV4 query parameters of presigned URLs and URL passwords (``scheme://user:password@host`` or
a ``password=`` query parameter; ``filepipe.config.redact_url``).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from filepipe.config import redact_url

_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "filepipe_log_context", default=None
)
_service: str | None = None

_SECRETS = (
    (re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token)=)[^&\s\"']+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[^\s\"',]+", re.I), r"\1***"),
    (re.compile(r"\b(fpk_|whsec_)[A-Za-z0-9+/=_-]+"), r"\1***"),
)


def redact(text: str) -> str:
    """``text`` with every secret this project knows the shape of masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return redact_url(text)


@contextmanager
def bound(**fields: str) -> Iterator[None]:
    """A scope (one request or event) whose records carry ``fields`` and what ``bind`` adds."""
    token = _context.set(dict(fields))
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` (e.g. ``file_id``, ``tenant``) to the records of the current ``bound``
    scope; outside any scope it does nothing (so nothing leaks into unrelated records)."""
    scope = _context.get()
    if scope is not None:
        _context.set({**scope, **{k: str(v) for k, v in fields.items() if v is not None}})


class ContextFilter(logging.Filter):
    """Adds ``function``, the bound fields and the current span's ids to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _service and not hasattr(record, "function"):
            record.function = _service
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            record.trace_id = format(span.trace_id, "032x")
            record.span_id = format(span.span_id, "016x")
        return True


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, with secrets masked in the line it produces."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    level: str = "INFO", service: str | None = None, *, stream: TextIO | None = None
) -> None:
    """Send every logger's records to stdout (or ``stream``) as JSON (idempotent); ``service``
    names the process in each record's ``function`` field."""
    global _service
    if service:
        _service = service
    root = logging.getLogger()
    if any(getattr(h, "_filepipe", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        RedactingJsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    handler.addFilter(ContextFilter())
    handler._filepipe = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for chatty in ("pika", "botocore", "urllib3"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    # pottery logs each Redis error with its traceback, then raises it (QuorumIsImpossible), which
    # filepipe.locks turns into the cause logged once: during an outage, two tracebacks per try
    logging.getLogger("pottery").setLevel(logging.CRITICAL)
