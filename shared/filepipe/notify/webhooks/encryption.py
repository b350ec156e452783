"""Endpoint secrets encrypted at rest: Fernet (``cryptography``) under keys from a Secret.

``FILEPIPE_WEBHOOK_SECRET_KEYS`` is a comma list of Fernet keys (``config.WEBHOOK_SECRET_KEYS``):
the first encrypts, every one decrypts (``MultiFernet``), so the encryption key itself can be
rotated: add the new key last everywhere (every process can then decrypt it), then put it first
and keep the old one after it until ``seal_stored`` has re-encrypted every secret under the new
one (it logs how many it did; none left once it stops logging), then drop the old key.

Columns of ``webhook_endpoints`` (migration 0007):

- ``secret_ciphertext``: the current ``whsec_`` secret, a Fernet token;
- ``previous_secret_ciphertext`` / ``previous_secret_expires_at``: the secret a rotation replaced,
  still signed with until the overlap ends;
- ``secret_key_id``: which key encrypted both (``SecretBox.key_id``, a fingerprint of the first
  key), so secrets under an older key are found without decrypting anything;
- ``secret``: the plain text of rows written before the migration (SQL has no key to encrypt
  them); ``seal_stored``, run by every PingSource sweep, encrypts them and clears it.

No secret, token or key is ever logged.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from psycopg_pool import ConnectionPool

from filepipe.config import Settings
from filepipe.notify.webhooks.errors import SecretUnreadable

log = logging.getLogger(__name__)

SEAL_BATCH = 100
"""Rows ``seal_stored`` reads at a time."""


class SecretBox:
    """Encrypts and decrypts endpoint secrets with the configured keys (first one encrypts)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a SecretBox needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.key_id = hashlib.sha256(b"filepipe webhook secrets\0" + keys[0].encode()).hexdigest()[
            :16
        ]
        """Fingerprint of the encrypting key (names it without revealing it)."""

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def seal(self, secret: str) -> str:
        """``secret`` encrypted under the first key (a Fernet token, URL-safe ASCII)."""
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, token: str) -> str:
        """The secret in ``token``; ``SecretUnreadable`` if no configured key decrypts it."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("no configured key decrypts this webhook secret") from exc

    def reseal(self, token: str) -> str:
        """``token`` re-encrypted under the first key; ``SecretUnreadable`` as ``open``."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretUnreadable("no configured key decrypts this webhook secret") from exc


def box_for(settings: Settings) -> SecretBox | None:
    """The box of ``settings.webhook_secret_keys``, or None when none is configured."""
    if not settings.webhook_secret_keys:
        return None
    return _box(settings.webhook_secret_keys)


@functools.cache
def _box(keys: tuple[str, ...]) -> SecretBox:
    return SecretBox(keys)


_CANDIDATES = """
SELECT id, secret, secret_ciphertext, previous_secret_ciphertext
FROM webhook_endpoints
WHERE (secret IS NOT NULL OR secret_key_id IS DISTINCT FROM %(key_id)s) AND id > %(after)s
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


def seal_stored(pool: ConnectionPool[Any], box: SecretBox) -> int:
    """Encrypt plain-text secrets, re-encrypt those under an older key, and forget previous
    secrets whose overlap has ended. Returns how many endpoints it changed."""
    with pool.connection() as conn:
        conn.execute(
            "UPDATE webhook_endpoints"
            " SET previous_secret_ciphertext = NULL, previous_secret_expires_at = NULL"
            " WHERE previous_secret_expires_at <= now()"
        )
    changed = unreadable = 0
    after = uuid.UUID(int=0)
    while True:
        with pool.connection() as conn, conn.transaction():
            rows = conn.execute(
                _CANDIDATES, {"key_id": box.key_id, "after": after, "limit": SEAL_BATCH}
            ).fetchall()
            for row in rows:
                try:
                    sealed = _sealed(box, row)
                except SecretUnreadable:
                    unreadable += 1
                    continue
                conn.execute(
                    "UPDATE webhook_endpoints SET secret = NULL, secret_ciphertext = %s,"
                    " previous_secret_ciphertext = %s, secret_key_id = %s WHERE id = %s",
                    (*sealed, box.key_id, row["id"]),
                )
                changed += 1
        if len(rows) < SEAL_BATCH:
            break
        after = rows[-1]["id"]
    if changed:
        log.info("webhook secrets encrypted under the first key", extra={"endpoints": changed})
    if unreadable:
        log.error(
            "webhook secrets that no configured key decrypts: was a key removed too early?",
            extra={"endpoints": unreadable},
        )
    return changed


def _sealed(box: SecretBox, row: dict[str, Any]) -> tuple[str, str | None]:
    """The row's current and previous secret, each encrypted under the first key."""
    plain: str | None = row["secret"]
    current = box.seal(plain) if plain is not None else box.reseal(row["secret_ciphertext"])
    previous = row["previous_secret_ciphertext"]
    return current, box.reseal(previous) if previous is not None else None
