"""Keep every line a local emulator prints a JSON object, like the functions' logs.

``filepipe.logs.configure_logging`` makes the emulator's own records (and pika's, werkzeug's)
JSON. What else reaches the terminal comes from Python itself and bypasses logging: warnings,
uncaught exceptions in the main thread or another thread, the tracebacks ``socketserver``
prints for a request that broke (a client resetting its connection), and anything a library
prints to ``sys.stderr``. ``capture`` routes each of them into logging: warnings and uncaught
exceptions as one record each (the traceback in ``exc_info``), and ``sys.stderr`` as one record
per line, so a log collector (or ``jq``) can read the emulator's output line by line.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from types import TracebackType


class _LineLogger(io.TextIOBase):
    """A text stream that logs each complete line it is given as one record."""

    def __init__(self, logger: logging.Logger, level: int, fallback: io.TextIOBase | None) -> None:
        self._logger = logger
        self._level = level
        self._fallback = fallback
        self._pending = ""
        self._lock = threading.Lock()
        self._inside = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if getattr(self._inside, "active", False):
            # logging itself failed and reports it here: write it out rather than loop
            if self._fallback is not None:
                self._fallback.write(text)
            return len(text)
        with self._lock:
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
        for line in lines:
            self._emit(line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        self._emit(line)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        self._inside.active = True
        try:
            self._logger.log(self._level, "%s", line.rstrip())
        finally:
            self._inside.active = False


def capture(service: str) -> None:
    """Route warnings, uncaught exceptions and ``sys.stderr`` of this process into logging.

    Call after ``configure_logging``, whose handler keeps the stream it was given.
    """
    logging.captureWarnings(True)
    uncaught = logging.getLogger(f"{service}.uncaught")

    def log_uncaught(
        kind: type[BaseException], error: BaseException, trace: TracebackType | None
    ) -> None:
        uncaught.critical("uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, trace))

    def log_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or isinstance(args.exc_value, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "?"
        uncaught.error(
            "thread %s died: %r",
            name,
            args.exc_value,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = log_uncaught
    threading.excepthook = log_thread
    original = sys.stderr if isinstance(sys.stderr, io.TextIOBase) else None
    sys.stderr = _LineLogger(logging.getLogger(f"{service}.stderr"), logging.ERROR, original)
