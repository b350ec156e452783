"""Where the server is and which key to use: argument > environment > nothing.

``FILEPIPE_URL`` is the one base URL of the API (the ingress, or the local front of ``make up``,
``http://localhost:8080``) that routes ``/uploads``, ``/files``, ``/webhooks`` and ``/ws``;
``FILEPIPE_API_KEY`` the tenant's API key. The environment is read only when asked.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from filepipe_client._errors import ConfigurationError

URL = "FILEPIPE_URL"
API_KEY = "FILEPIPE_API_KEY"


@dataclass(frozen=True)
class Config:
    """A base URL (``http`` or ``https``, no query) and an API key."""

    url: str
    api_key: str = field(repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"{self.url!r} is not an http(s) URL with a host")
        if parts.query or parts.fragment:
            raise ConfigurationError(f"{self.url!r}: give the base URL, without ? or #")
        object.__setattr__(self, "url", self.url.rstrip("/"))

    @classmethod
    def resolve(
        cls,
        url: str | None = None,
        api_key: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Config:
        """``url`` and ``api_key`` when given, else ``FILEPIPE_URL`` and ``FILEPIPE_API_KEY``."""
        env = os.environ if environ is None else environ
        url = url or env.get(URL, "").strip()
        api_key = api_key or env.get(API_KEY, "").strip()
        if not url:
            raise ConfigurationError(f"no server URL: set {URL} or pass --url")
        if not api_key:
            raise ConfigurationError(f"no API key: set {API_KEY} or pass --api-key")
        return cls(url, api_key)
