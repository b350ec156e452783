"""The ``filepipe-admin`` operator console script: migrations and the API keys' lifecycle.

::

    filepipe-admin migrate [--dir DIR]
    filepipe-admin create-key --tenant NAME [--name LABEL]
                              [--expires-in DURATION | --expires-at TIME]
    filepipe-admin list-keys [--tenant NAME] [--json]
    filepipe-admin revoke-key KEY_ID
    filepipe-admin rotate-key KEY_ID [--grace DURATION] [--name LABEL]
                                     [--expires-in DURATION | --expires-at TIME]

A new key is printed on the last line of stdout
(``KEY=$(filepipe-admin create-key … | tail -n1)``); logs go to stderr. Keys are named by their
id or prefix, as ``list-keys`` shows them, never by the key itself. Durations are ``90d``,
``12h``, ``1h30m``, ``45s`` (``w``, ``d``, ``h``, ``m``, ``s``) or plain seconds; times are
RFC 3339 with an offset (``2030-01-01T00:00:00Z``). Users' commands (upload, list, download)
are the ``filepipe`` script of the separate ``filepipe-client`` distribution (``clients/python``).

Revoking or rotating a key takes effect at once everywhere: the change is committed to
PostgreSQL, then announced on Redis (``filepipe.revocation``) so that the query function's key
cache forgets the key and the WebSocket gateways close its connections. If Redis can't be
reached the command says so and exits 1 (the change stands; run it again to re-announce).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis

from filepipe import auth, db, revocation
from filepipe.config import Settings
from filepipe.errors import FilepipeError
from filepipe.logs import configure_logging

log = logging.getLogger(__name__)

_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_LIST_COLUMNS = (
    ("id", "id"),
    ("tenant", "tenant"),
    ("prefix", "prefix"),
    ("name", "name"),
    ("created", "created_at"),
    ("last used", "last_used_at"),
    ("expires", "expires_at"),
    ("revoked", "revoked_at"),
    ("status", "status"),
)


def duration(text: str) -> timedelta:
    """``90d``, ``1h30m``, ``45s`` or plain seconds (``3600``) as a ``timedelta``."""
    text = text.strip().lower()
    try:
        seconds = float(text) if _SECONDS.fullmatch(text) else _sum_of_parts(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (e.g. 90d, 12h, 1h30m, 45s, or seconds)"
        ) from None
    if not 0 <= seconds <= 100 * 365 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 100 years")
    return timedelta(seconds=seconds)


def lifetime(text: str) -> timedelta:
    """A ``duration`` longer than 0."""
    value = duration(text)
    if not value:
        raise argparse.ArgumentTypeError("a key's lifetime must be longer than 0")
    return value


def _sum_of_parts(text: str) -> float:
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ValueError(text)
    return sum(float(amount) * _UNITS[unit] for amount, unit in parts)


def moment(text: str) -> datetime:
    """An RFC 3339 time with an offset (``Z`` allowed)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time (RFC 3339, e.g. 2030-01-01T00:00:00Z)"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no offset (add Z or +hh:mm)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="filepipe-admin",
        description="filepipe's operator commands: migrations and API keys.",
        epilog="Durations: 90d, 12h, 1h30m, 45s or seconds."
        " Times: RFC 3339, e.g. 2030-01-01T00:00:00Z.",
    )
    parser.add_argument("--database-url", help="overrides FILEPIPE_DATABASE_URL")
    parser.add_argument("--redis-url", help="overrides FILEPIPE_REDIS_URL")
    commands = parser.add_subparsers(dest="command", required=True)

    migrate = commands.add_parser("migrate", help="apply the database migrations not yet applied")
    migrate.add_argument("--dir", type=Path, help="overrides FILEPIPE_MIGRATIONS_DIR")

    create = commands.add_parser(
        "create-key", help="create a tenant (if new) and an API key; prints the key last"
    )
    create.add_argument("--tenant", required=True)
    _key_options(create)

    listing = commands.add_parser("list-keys", help="list API keys (never the keys themselves)")
    listing.add_argument("--tenant", help="only this tenant's keys")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")

    revoke = commands.add_parser("revoke-key", help="revoke a key now, everywhere")
    revoke.add_argument("key_id", metavar="KEY_ID", help="the key's id or prefix (list-keys)")

    rotate = commands.add_parser(
        "rotate-key",
        help="a new key for the same tenant (printed last); the old one is revoked now,"
        " or expires after --grace",
    )
    rotate.add_argument("key_id", metavar="KEY_ID", help="the key's id or prefix (list-keys)")
    rotate.add_argument(
        "--grace",
        type=duration,
        default=timedelta(0),
        help="keep the old key working this long (default: revoke it now)",
    )
    _key_options(rotate, rotating=True)
    return parser


def _key_options(parser: argparse.ArgumentParser, *, rotating: bool = False) -> None:
    parser.add_argument(
        "--name", help="a label for people" + (" (default: the old key's)" if rotating else "")
    )
    expiry = parser.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires-in",
        type=lifetime,
        help="the key expires this long from now"
        + (" (default: the old key's lifetime, if it had one)" if rotating else ""),
    )
    expiry.add_argument("--expires-at", type=moment, help="the key expires at this time")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level, service="filepipe-cli", stream=sys.stderr)
    url = args.database_url or settings.database_url
    try:
        if args.command == "migrate":
            directory = args.dir or (
                Path(settings.migrations_dir) if settings.migrations_dir else None
            )
            applied = db.migrate(url, directory)
            log.info("database is up to date", extra={"applied": applied})
            return 0
        with psycopg.connect(url, options="-c timezone=UTC") as conn:
            if args.command == "create-key":
                return _create(conn, args)
            if args.command == "list-keys":
                return _list(conn, args)
            client = redis.Redis.from_url(
                args.redis_url or settings.redis_url, socket_timeout=5, socket_connect_timeout=5
            )
            with client:
                if args.command == "revoke-key":
                    return _revoke(conn, client, args)
                return _rotate(conn, client, args)
    except (FilepipeError, psycopg.Error) as exc:
        log.error("command failed", extra={"command": args.command, "error": str(exc)})
        return 1


def _create(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    issued = auth.issue_key(
        conn, args.tenant, name=args.name, expires_at=args.expires_at, expires_in=args.expires_in
    )
    log.info("API key created", extra={"key_id": str(issued.id), "tenant": issued.tenant})
    _say(issued.key)
    return 0


def _list(conn: psycopg.Connection[Any], args: argparse.Namespace) -> int:
    if args.tenant is not None:
        auth.validate_tenant(args.tenant)
    rows = [_listed(key) for key in auth.list_keys(conn, args.tenant)]
    if args.json:
        _say(json.dumps(rows, indent=2))
        return 0
    table = [[title for title, _ in _LIST_COLUMNS]]
    table += [[str(row[field] or "-") for _, field in _LIST_COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_LIST_COLUMNS))]
    for line in table:
        _say(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return 0


def _listed(key: auth.ApiKey) -> dict[str, Any]:
    return {
        "id": str(key.id),
        "tenant": key.tenant,
        "prefix": key.prefix,
        "name": key.name,
        "created_at": _iso(key.created_at),
        "last_used_at": _iso(key.last_used_at),
        "expires_at": _iso(key.expires_at),
        "revoked_at": _iso(key.revoked_at),
        "status": key.status,
    }


def _revoke(conn: psycopg.Connection[Any], client: redis.Redis, args: argparse.Namespace) -> int:
    change = auth.revoke_key(conn, args.key_id)
    conn.commit()
    key = change.key
    what = "was already revoked" if change.already_revoked else "revoked"
    _say(f"key {key.id} ({key.prefix}, tenant {key.tenant}) {what} at {_iso(key.revoked_at)}")
    return _announce(client, change)


def _rotate(conn: psycopg.Connection[Any], client: redis.Redis, args: argparse.Namespace) -> int:
    issued, change = auth.rotate_key(
        conn,
        args.key_id,
        grace=args.grace,
        name=args.name,
        expires_at=args.expires_at,
        expires_in=args.expires_in,
    )
    conn.commit()
    old = change.key
    fate = (
        f"expires at {_iso(old.expires_at)}"
        if change.ends_in
        else f"revoked at {_iso(old.revoked_at)}"
    )
    _say(f"old key {old.id} ({old.prefix}, tenant {old.tenant}) {fate}")
    _say(f"new key {issued.id}:")
    status = _announce(client, change)
    _say(issued.key)
    return status


def _announce(client: redis.Redis, change: auth.Change) -> int:
    """Tell the caches and gateways; 1 (and an error saying what to do) if Redis is away."""
    try:
        heard = revocation.announce(client, change.key.id, change.key_hash, change.ends_in)
    except revocation.AnnouncementFailed as exc:
        log.error(
            "the change is committed, but caches and gateways were not told; run the command"
            " again (or wait up to 60 s for caches; open WebSockets stay open until told)",
            extra={"key_id": str(change.key.id), "error": str(exc)},
        )
        return 1
    log.info(
        "key change announced",
        extra={"key_id": str(change.key.id), "gateways": heard, "ends_in": change.ends_in},
    )
    return 0


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
