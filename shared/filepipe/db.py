"""PostgreSQL access: a psycopg 3 connection pool and the schema migrations (yoyo)."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from yoyo import get_backend, read_migrations

from filepipe.errors import ConfigError, DependencyError

log = logging.getLogger(__name__)


class DatabaseUnavailable(DependencyError):
    """PostgreSQL could not be reached or failed a query in a way worth retrying."""


CHECKOUT_TIMEOUT = 5.0
"""Seconds a caller waits for a connection before ``PoolTimeout`` (answered as a 503); functions
use ``FILEPIPE_DB_CHECKOUT_TIMEOUT`` instead."""
CONNECT_TIMEOUT = 3
"""Seconds libpq waits for a new connection (its minimum is 2): an unreachable server costs a
reconnect attempt this long at most, never the operating system's minutes."""
RECONNECT_TIMEOUT = 2.0
"""Seconds the pool retries a lost connection before that attempt gives up. psycopg_pool backs
off (1 s, 2 s, 4 s… until this timeout), so a long timeout means a long last wait: after a
2-minute outage the next try could be a minute away, and every request until then a 503. Short,
the waits stay under a second; once an attempt gave up, the next checkout that finds no
connection starts a new one at once, so the pool never stays empty for good and the first
request after PostgreSQL is back gets a connection."""
CONNECTION_OPTIONS = {
    "options": "-c timezone=UTC",
    "connect_timeout": CONNECT_TIMEOUT,
    # A server that vanished without closing its sockets (a cut network, a killed host) is
    # noticed in seconds: keepalives probe idle connections, tcp_user_timeout bounds a write
    # nobody acknowledges.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
"""libpq parameters of every pooled connection."""


def create_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    checkout_timeout: float = CHECKOUT_TIMEOUT,
    wait: bool = True,
) -> ConnectionPool:
    """A pool whose connections return rows as dicts and are checked on every checkout.

    With ``wait`` (commands, tests), it waits for its first connection and raises
    ``DatabaseUnavailable`` if PostgreSQL cannot be reached; without (long-lived functions),
    it opens at once and connects in the background, so a function starts, and answers each
    request with a quick 503, while PostgreSQL is down.

    The check on checkout (an empty query, one round trip) discards connections that died in an
    outage, so the first requests after it heals get live ones; a checkout waits
    ``checkout_timeout`` seconds at most, then ``PoolTimeout`` (a 503).
    """
    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=checkout_timeout,
        kwargs={"row_factory": dict_row, **CONNECTION_OPTIONS},
        check=ConnectionPool.check_connection,
        reconnect_timeout=RECONNECT_TIMEOUT,
        reconnect_failed=_reconnect_failed,
        open=False,
        name="filepipe",
    )
    if not wait:
        pool.open(wait=False)
        return pool
    try:
        pool.open(wait=True, timeout=10)
    except psycopg.OperationalError as exc:
        pool.close()
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    except Exception:
        pool.close()
        raise
    return pool


def _reconnect_failed(pool: ConnectionPool) -> None:
    log.warning(
        "PostgreSQL unreachable: a pooled connection gave up reconnecting; the next checkout"
        " tries again",
        extra={"pool": pool.name, "reconnect_timeout": RECONNECT_TIMEOUT},
    )


def default_migrations_dir() -> Path:
    """``migrations/`` of the source tree, or of the working directory (as in containers)."""
    for candidate in (
        Path(__file__).resolve().parents[2] / "migrations",
        Path.cwd() / "migrations",
    ):
        if candidate.is_dir():
            return candidate
    raise ConfigError("no migrations directory found; set FILEPIPE_MIGRATIONS_DIR")


def migrate(url: str, migrations_dir: Path | None = None) -> int:
    """Apply the migrations not yet applied; returns how many ran. Safe to run concurrently."""
    directory = migrations_dir or default_migrations_dir()
    backend = get_backend(_yoyo_url(url))
    migrations = read_migrations(str(directory))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
    log.info("migrations applied", extra={"applied": len(pending), "dir": str(directory)})
    return len(pending)


def _yoyo_url(url: str) -> str:
    """yoyo picks its driver by scheme: ``postgresql+psycopg`` is the psycopg 3 backend."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url
