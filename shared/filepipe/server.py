"""``python -m filepipe.server``: serve one function with functions-framework under gunicorn.

It does what the ``functions-framework`` command does (``--source``/``FUNCTION_SOURCE``,
``--target``/``FUNCTION_TARGET``, ``--port``/``PORT``, default 8080) with gunicorn's request-line
and header limits raised above the HTTP edge's own (``filepipe.web.limits``), so an oversized
request is answered by the edge, as problem+json, not by gunicorn in plain text.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from functions_framework import create_app
from functions_framework._http import create_server

from filepipe.config import Settings
from filepipe.web import limits

DEFAULT_PORT = 8080
GUNICORN_LIMITS = {
    "limit_request_line": 0,  # unlimited (gunicorn caps any other value at 8190)
    "limit_request_field_size": 4 * limits.MAX_HEADER_BYTES,
    "limit_request_fields": 200,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m filepipe.server", description=__doc__)
    parser.add_argument("--source", help="the function's main.py (default: FUNCTION_SOURCE)")
    parser.add_argument("--target", help="the function to serve (default: FUNCTION_TARGET)")
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all
    parser.add_argument("--port", type=int, help="default: PORT, else 8080")
    args = parser.parse_args(argv)
    port = args.port or Settings.from_env().port or DEFAULT_PORT
    app = create_app(args.target, args.source)  # type: ignore[no-untyped-call]
    create_server(app, False, **GUNICORN_LIMITS).run(args.host, port)  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
