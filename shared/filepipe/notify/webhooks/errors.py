"""Errors of the webhooks package.

::

    FilepipeError
    └── WebhookError
        ├── UnsafeURL          (also ValueError) a URL the SSRF guard refuses, or a malformed one
        ├── HostNotFound       the URL's host does not resolve (may resolve later)
        └── SecretUnreadable   a stored secret none of the configured keys decrypts
"""

from __future__ import annotations

from filepipe.errors import FilepipeError


class WebhookError(FilepipeError):
    """Base of the webhooks package's errors."""


class UnsafeURL(WebhookError, ValueError):
    """The URL is malformed or reaches an address or port webhooks may not reach."""


class HostNotFound(WebhookError):
    """The URL's host name does not resolve (now)."""


class SecretUnreadable(WebhookError):
    """An endpoint secret none of ``FILEPIPE_WEBHOOK_SECRET_KEYS`` decrypts (its key is gone)."""
