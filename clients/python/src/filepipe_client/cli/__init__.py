"""The ``filepipe`` command: a thin layer over ``filepipe_client``.

::

    filepipe upload PATH... [--metadata K=V]... [--content-type T] [--wait] [--concurrency N]
                            [--json] [--restart]
    filepipe ls [--status S] [--content-type T] [--filename F] [--limit N] [--all] [--json]
    filepipe status ID [--json]
    filepipe get ID [-o PATH]
    filepipe rm ID
    filepipe watch [--file ID] [--json]

Every command takes ``--url`` and ``--api-key`` (else ``FILEPIPE_URL``, ``FILEPIPE_API_KEY``).
Exit codes are in ``_exits`` (and every ``--help``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from filepipe_client._client import Client
from filepipe_client._config import Config
from filepipe_client._errors import FilepipeError
from filepipe_client.cli import _exits
from filepipe_client.cli._commands import COMMANDS, say_error
from filepipe_client.cli._parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 10_000)
    try:
        config = Config.resolve(args.url, args.api_key)
        with Client(config) as client:
            return COMMANDS[args.command](args, client, console)
    except FilepipeError as exc:
        say_error(_exits.message(exc))
        return _exits.exit_code(exc)
    except KeyboardInterrupt:
        say_error("interrupted; run the same command again to resume an upload")
        return _exits.INTERRUPTED


def run() -> None:
    sys.exit(main())
