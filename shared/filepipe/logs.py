"""Logging: one JSON object per line on stdout."""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_filepipe", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    handler._filepipe = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for chatty in ("pika", "pottery", "botocore", "urllib3"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
