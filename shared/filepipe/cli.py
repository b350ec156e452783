"""The ``filepipe`` console script: ``migrate`` and ``create-key --tenant NAME``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import psycopg

from filepipe import auth, db
from filepipe.config import Settings
from filepipe.errors import FilepipeError
from filepipe.logs import configure_logging

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="filepipe", description=__doc__)
    parser.add_argument("--database-url", help="overrides FILEPIPE_DATABASE_URL")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="apply the database migrations not yet applied")
    migrate.add_argument("--dir", type=Path, help="overrides FILEPIPE_MIGRATIONS_DIR")
    create_key = commands.add_parser(
        "create-key", help="create a tenant (if new) and an API key; prints the key last"
    )
    create_key.add_argument("--tenant", required=True)
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    url = args.database_url or settings.database_url
    try:
        if args.command == "migrate":
            directory = args.dir or (
                Path(settings.migrations_dir) if settings.migrations_dir else None
            )
            applied = db.migrate(url, directory)
            log.info("database is up to date", extra={"applied": applied})
        else:
            with psycopg.connect(url) as conn:
                key = auth.create_key(conn, args.tenant)
            sys.stdout.write(key + "\n")
    except (FilepipeError, psycopg.Error) as exc:
        log.error("command failed", extra={"command": args.command, "error": str(exc)})
        return 1
    return 0


def run() -> None:
    sys.exit(main())
