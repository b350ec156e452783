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
"""Seconds a caller waits for a connection before ``PoolTimeout`` (answered as a 503)."""


def create_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    """Open a pool whose connections return rows as dicts; waits for the first connection."""
    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        timeout=CHECKOUT_TIMEOUT,
        kwargs={"row_factory": dict_row, "options": "-c timezone=UTC"},
        open=False,
        name="filepipe",
    )
    try:
        pool.open(wait=True, timeout=10)
    except psycopg.OperationalError as exc:
        pool.close()
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    except Exception:
        pool.close()
        raise
    return pool


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
