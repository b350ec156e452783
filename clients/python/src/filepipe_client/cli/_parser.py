"""The ``filepipe`` command line: global options, one subcommand per task, ``--help`` on each."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from filepipe_client._config import API_KEY, URL
from filepipe_client._models import Status
from filepipe_client.cli._exits import EXIT_CODES

_SIZE = re.compile(r"([0-9]+)\s*(?:([KMG])(?:i?B)?)?", re.IGNORECASE)
_SCALE = {None: 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def byte_size(text: str) -> int:
    """``5242880``, ``5MiB``, ``5M``, ``16 MiB``: bytes."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 16MiB)")
    return int(match[1]) * _SCALE[match[2] and match[2].upper()]


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


def metadata_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _connection_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--url", default=default, help=f"the API's base URL (default: ${URL})")
    parser.add_argument(
        "--api-key", default=default, help=f"the tenant's API key (default: ${API_KEY})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="filepipe",
        description="Upload files to filepipe, list, fetch and delete them, watch their events.",
        epilog=f"Configuration: ${URL} and ${API_KEY}, or --url and --api-key (a flag wins)."
        f"\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _connection_options(parser, None)
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    upload = command(
        "upload",
        "upload files (large ones in parallel parts); run it again after an interruption to"
        " resume from the parts already stored",
    )
    upload.add_argument("paths", nargs="+", type=existing_file, metavar="PATH")
    upload.add_argument(
        "--metadata", type=metadata_pair, action="append", default=[], metavar="KEY=VALUE"
    )
    upload.add_argument("--content-type", help="default: guessed from the file name")
    upload.add_argument(
        "--wait", action="store_true", help="wait until each file is processed (or rejected)"
    )
    upload.add_argument(
        "--concurrency", type=positive, default=4, help="parts sent at once (default: 4)"
    )
    upload.add_argument("--json", action="store_true", help="one JSON object per file")
    upload.add_argument(
        "--restart", action="store_true", help="cancel an unfinished upload and start over"
    )
    upload.add_argument("--part-size", type=byte_size, help=argparse.SUPPRESS)

    listing = command("ls", "list files, newest first")
    listing.add_argument("--status", type=str.upper, choices=[s.value for s in Status])
    listing.add_argument("--content-type")
    listing.add_argument("--filename")
    listing.add_argument("--limit", type=positive, help="files per page (at most 200)")
    listing.add_argument("--all", action="store_true", help="every page, not only the first")
    listing.add_argument("--json", action="store_true", help="one JSON object per file")

    status = command("status", "show a file")
    status.add_argument("file_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="the file as JSON")

    get = command("get", "download a processed file, its SHA-256 checked")
    get.add_argument("file_id", metavar="ID")
    get.add_argument(
        "-o", "--output", type=Path, help="file or directory (default: the file's name, here)"
    )

    remove = command("rm", "delete a file (its object is removed; the file stays, DELETED)")
    remove.add_argument("file_id", metavar="ID")

    watch = command("watch", "print file events as they happen, until Ctrl-C")
    watch.add_argument("--file", dest="file_id", metavar="ID", help="only this file's events")
    watch.add_argument("--json", action="store_true", help="each event's CloudEvent JSON")
    return parser
