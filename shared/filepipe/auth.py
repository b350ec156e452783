"""API keys: their format, their rows, their lifecycle, and authenticating a caller with one.

A key is ``fpk_`` followed by 43 URL-safe base64 characters (256 random bits), so a plain
SHA-256 is a sound at-rest hash (no password stretching needed) and allows an indexed lookup.
Only the hash and a short prefix (``fpk_`` + 8 characters, for people to tell keys apart) are
stored; the key itself is shown once, when it is made.

A key works until it is revoked (``revoked_at``) or expires (``expires_at``, optional); both
are checked on every authentication. ``last_used_at`` is written at most once a minute per key
(``LAST_USED_RESOLUTION``), in the statement that checks the key, and never waits for a lock.
Whoever revokes, rotates or shortens a key must then tell the processes that remember it
(``filepipe.revocation.announce``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import Connection
from psycopg.rows import class_row, dict_row
from psycopg_pool import ConnectionPool

from filepipe.errors import BadRequest, Conflict, NotFound, Unauthorized

KEY_PREFIX = "fpk_"
PREFIX_LENGTH = 12
"""Characters of a key kept as its ``prefix`` (keys made before 0006 kept 8)."""
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is at most this stale (plus the query function's key cache, 60 s)."""
MAX_NAME_LENGTH = 200
_KEY_SHAPE = re.compile(r"^fpk_[A-Za-z0-9_-]{43}$")
_PREFIX_SHAPE = re.compile(r"^fpk_[A-Za-z0-9_-]{4,43}$")
_TENANT_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class Credential:
    """Who an accepted key speaks for, and for how long."""

    key_id: uuid.UUID
    tenant: str
    expires_in: float | None
    """Seconds until the key expires, by PostgreSQL's clock; ``None``: it never does."""


@dataclass(frozen=True)
class ApiKey:
    """A row of ``api_keys``, without its hash."""

    id: uuid.UUID
    tenant: str
    prefix: str
    name: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    expired: bool
    """``expires_at`` has passed (by PostgreSQL's clock when the row was read)."""

    @property
    def status(self) -> str:
        """``revoked``, ``expired`` or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expired else "active"


@dataclass(frozen=True)
class IssuedKey:
    """A key just made: the only moment its secret is known."""

    id: uuid.UUID
    tenant: str
    key: str


@dataclass(frozen=True)
class Change:
    """What revoking or rotating did to a key, for ``filepipe.revocation.announce``."""

    key: ApiKey
    key_hash: bytes
    ends_in: float
    """Seconds until the key stops working: 0 when revoked now, else what is left of it."""
    already_revoked: bool = False


_COLUMNS = """id, tenant, prefix, name, created_at, last_used_at, expires_at, revoked_at,
    coalesce(expires_at <= now(), false) AS expired"""


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def validate_tenant(name: str) -> str:
    if not _TENANT_SHAPE.fullmatch(name):
        raise BadRequest(
            "tenant names are 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )
    return name


def validate_name(name: str | None) -> str | None:
    """A key's label: 1-200 printable characters, or none."""
    if name is not None and not (0 < len(name) <= MAX_NAME_LENGTH and name.isprintable()):
        raise BadRequest(f"key names are 1-{MAX_NAME_LENGTH} printable characters")
    return name


def create_key(
    conn: Connection[Any],
    tenant: str,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """Create ``tenant`` if needed and a new API key for it; returns the key (shown only once)."""
    return issue_key(conn, tenant, name=name, expires_at=expires_at, expires_in=expires_in).key


def issue_key(
    conn: Connection[Any],
    tenant: str,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
    expires_in: timedelta | None = None,
) -> IssuedKey:
    """``create_key``, with the new key's id. It expires at ``expires_at`` or ``expires_in``
    from now (by PostgreSQL's clock), or never; an expiry already past is a ``BadRequest``."""
    validate_tenant(tenant)
    validate_name(name)
    if expires_at is not None and expires_in is not None:
        raise BadRequest("give an expiry time or a lifetime, not both")
    if expires_at is not None and expires_at.tzinfo is None:
        raise BadRequest("an expiry needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    if expires_in is not None and expires_in <= timedelta(0):
        raise BadRequest("a key's lifetime must be longer than 0")
    key, key_id = KEY_PREFIX + secrets.token_urlsafe(32), uuid.uuid4()
    values = {
        "id": key_id,
        "tenant": tenant,
        "hash": hash_key(key),
        "prefix": key[:PREFIX_LENGTH],
        "name": name,
        "expires_at": expires_at,
        "expires_in": expires_in,
    }
    with conn.transaction():
        conn.execute("INSERT INTO tenants (name) VALUES (%s) ON CONFLICT DO NOTHING", (tenant,))
        inserted = conn.execute(
            """INSERT INTO api_keys (id, tenant, key_hash, prefix, name, expires_at)
            SELECT %(id)s, %(tenant)s, %(hash)s, %(prefix)s, %(name)s, expiry
            FROM coalesce(%(expires_at)s::timestamptz, now() + %(expires_in)s::interval) AS expiry
            WHERE expiry IS NULL OR expiry > now()""",
            values,
        ).rowcount
        if inserted != 1:
            raise BadRequest(f"the expiry {expires_at} has passed")
    return IssuedKey(key_id, tenant, key)


def list_keys(conn: Connection[Any], tenant: str | None = None) -> list[ApiKey]:
    """Every key (of ``tenant``, if given), oldest first."""
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        return cur.execute(
            f"""SELECT {_COLUMNS} FROM api_keys
            WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s
            ORDER BY created_at, id""",  # noqa: S608 - a constant column list
            {"tenant": tenant},
        ).fetchall()


def find_key(conn: Connection[Any], reference: str, *, lock: bool = False) -> tuple[ApiKey, bytes]:
    """The key named by its id or its prefix (as ``list-keys`` shows them), with its hash.

    The key itself is refused (it would end up in shell histories and logs); a prefix shared by
    several keys is a ``Conflict`` naming their ids.
    """
    reference = reference.strip()
    if _KEY_SHAPE.fullmatch(reference):
        raise BadRequest("name the key by its id or prefix (see list-keys), never the key itself")
    value: uuid.UUID | str
    try:
        column, value = "id", uuid.UUID(reference)
    except ValueError:
        if not _PREFIX_SHAPE.fullmatch(reference):
            raise BadRequest(f"{reference!r} is neither a key id (uuid) nor a prefix") from None
        column, value = "prefix", reference
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS}, key_hash FROM api_keys WHERE {column} = %s"  # noqa: S608
            + (" FOR UPDATE" if lock else ""),
            (value,),
        ).fetchall()
    if not rows:
        raise NotFound(f"no API key {reference!r}")
    if len(rows) > 1:
        ids = ", ".join(str(row["id"]) for row in rows)
        raise Conflict(f"several keys have the prefix {reference!r}; give one id of: {ids}")
    row = rows[0]
    key_hash = bytes(row.pop("key_hash"))
    return ApiKey(**row), key_hash


def revoke_key(conn: Connection[Any], reference: str) -> Change:
    """Revoke the key now (a key already revoked stays as it was)."""
    with conn.transaction():
        key, key_hash = find_key(conn, reference, lock=True)
        if key.revoked_at is not None:
            return Change(key, key_hash, ends_in=0.0, already_revoked=True)
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.id,))
        key, key_hash = find_key(conn, str(key.id))
    return Change(key, key_hash, ends_in=0.0)


def rotate_key(
    conn: Connection[Any],
    reference: str,
    *,
    grace: timedelta = timedelta(0),
    name: str | None = None,
    expires_at: datetime | None = None,
    expires_in: timedelta | None = None,
) -> tuple[IssuedKey, Change]:
    """A new key for the old one's tenant; the old one is revoked now, or expires after
    ``grace`` (sooner if it already expires sooner). The new key keeps the old one's name
    unless given one, and its lifetime (``expires_at - created_at``) unless given an expiry."""
    if grace < timedelta(0):
        raise BadRequest("the grace period can't be negative")
    with conn.transaction():
        old, key_hash = find_key(conn, reference, lock=True)
        if old.revoked_at is not None:
            raise Conflict(f"key {old.id} is revoked; make a new one with create-key")
        if expires_at is None and expires_in is None and old.expires_at is not None:
            expires_in = old.expires_at - old.created_at
        new = issue_key(
            conn, old.tenant, name=name or old.name, expires_at=expires_at, expires_in=expires_in
        )
        ends_in = 0.0
        if grace:
            with conn.cursor(row_factory=dict_row) as cur:
                row = cur.execute(
                    """UPDATE api_keys SET expires_at = least(expires_at, now() + %s) WHERE id = %s
                    RETURNING extract(epoch FROM expires_at - now())::float8 AS remaining""",
                    (grace, old.id),
                ).fetchone()
            ends_in = max(float(row["remaining"]), 0.0) if row is not None else 0.0
        else:
            conn.execute("UPDATE api_keys SET revoked_at = now() WHERE id = %s", (old.id,))
        old, key_hash = find_key(conn, str(old.id))
    return new, Change(old, key_hash, ends_in=ends_in)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ``Unauthorized``."""
    if not authorization:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <api key>'")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
    return token.strip()


def from_header(pool: ConnectionPool[Any], authorization: str | None) -> str:
    """The tenant of the API key in an ``Authorization: Bearer`` header, or ``Unauthorized``."""
    return authenticate(pool, bearer_token(authorization))


def authenticate(pool: ConnectionPool[Any], token: str) -> str:
    """Resolve an API key to its tenant's name; unknown, malformed, revoked or expired keys are
    refused."""
    return identify(pool, token).tenant


_IDENTIFY = """
WITH found AS (
    SELECT id AS key_id, tenant, extract(epoch FROM expires_at - now())::float8 AS expires_in
    FROM api_keys
    WHERE key_hash = %(hash)s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
), touched AS (
    UPDATE api_keys SET last_used_at = now()
    WHERE id IN (
        SELECT k.id FROM api_keys k JOIN found ON k.id = found.key_id
        WHERE k.last_used_at IS NULL OR k.last_used_at < now() - %(resolution)s
        FOR UPDATE OF k SKIP LOCKED
    )
    RETURNING id
)
SELECT key_id, tenant, expires_in FROM found
"""
"""Check a key and, if its ``last_used_at`` is older than the resolution, bump it; a row locked
by a concurrent bump is skipped rather than waited for (that one writes the same minute)."""


def identify(pool: ConnectionPool[Any], token: str) -> Credential:
    """The key's id, tenant and remaining lifetime; ``Unauthorized`` unless it is valid now."""
    if not _KEY_SHAPE.fullmatch(token):
        raise Unauthorized("invalid API key")
    credential: Credential | None
    with pool.connection() as conn, conn.cursor(row_factory=class_row(Credential)) as cur:
        credential = cur.execute(
            _IDENTIFY, {"hash": hash_key(token), "resolution": LAST_USED_RESOLUTION}
        ).fetchone()
    if credential is None:
        raise Unauthorized("invalid API key")
    return credential


def active_keys(
    pool: ConnectionPool[Any], key_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, float | None]:
    """Of ``key_ids``, those still valid, each with the seconds until it expires (or ``None``)."""
    if not key_ids:
        return {}
    with pool.connection() as conn, conn.cursor(row_factory=class_row(Credential)) as cur:
        rows = cur.execute(
            """SELECT id AS key_id, tenant,
                extract(epoch FROM expires_at - now())::float8 AS expires_in
            FROM api_keys
            WHERE id = ANY(%s) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            """,
            (list(key_ids),),
        ).fetchall()
    return {row.key_id: row.expires_in for row in rows}
