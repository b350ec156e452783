"""API-key authentication: keys belong to a tenant and only their SHA-256 is stored.

A key is ``fpk_`` followed by 43 URL-safe base64 characters (256 random bits), so a plain
SHA-256 is a sound at-rest hash (no password stretching needed) and allows an indexed lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from typing import Any

from psycopg import Connection
from psycopg_pool import ConnectionPool

from filepipe.errors import BadRequest, Unauthorized

KEY_PREFIX = "fpk_"
_KEY_SHAPE = re.compile(r"^fpk_[A-Za-z0-9_-]{43}$")
_TENANT_SHAPE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def validate_tenant(name: str) -> str:
    if not _TENANT_SHAPE.fullmatch(name):
        raise BadRequest(
            "tenant names are 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
        )
    return name


def create_key(conn: Connection[Any], tenant: str) -> str:
    """Create ``tenant`` if needed and a new API key for it; returns the key (shown only once)."""
    validate_tenant(tenant)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    conn.execute("INSERT INTO tenants (name) VALUES (%s) ON CONFLICT DO NOTHING", (tenant,))
    conn.execute(
        "INSERT INTO api_keys (id, tenant, key_hash, prefix) VALUES (%s, %s, %s, %s)",
        (uuid.uuid4(), tenant, hash_key(key), key[:8]),
    )
    return key


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
    """Resolve an API key to its tenant's name; unknown, malformed or revoked keys are refused."""
    if not _KEY_SHAPE.fullmatch(token):
        raise Unauthorized("invalid API key")
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT tenant FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (hash_key(token),),
        ).fetchone()
    if row is None:
        raise Unauthorized("invalid API key")
    return str(row["tenant"])
