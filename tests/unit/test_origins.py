"""The allowed-origins matcher shared by CORS, the gateway and the local S3 server."""

from __future__ import annotations

import pytest

from filepipe.config import Settings
from filepipe.errors import ConfigError
from filepipe.origins import AllowedOrigins, is_entry


@pytest.mark.parametrize(
    ("entries", "origin", "allowed"),
    [
        (["https://app.example.com"], "https://app.example.com", True),
        (["https://app.example.com"], "HTTPS://App.Example.com", True),
        (["https://app.example.com"], "https://app.example.com:8443", False),
        (["https://app.example.com"], "http://app.example.com", False),
        (["https://app.example.com"], "https://app.example.com.evil.example", False),
        (["http://localhost:*"], "http://localhost:5173", True),
        (["http://localhost:*"], "http://localhost", True),
        (["http://localhost:*"], "http://localhost.evil.example:80", False),
        (["http://localhost:*"], "http://127.0.0.1:5173", False),
        (["http://localhost:*"], "https://localhost:5173", False),
        (["https://*.example.com"], "https://app.example.com", True),
        (["https://*.example.com"], "https://a.b.example.com", True),
        (["https://*.example.com"], "https://example.com", False),
        (["https://*.example.com"], "https://evilexample.com", False),
        (["https://*.example.com"], "https://app.example.com:8443", False),
        (["https://*.example.com:*"], "https://app.example.com:8443", True),
        (["http://[::1]:*"], "http://[::1]:8080", True),
        (["*"], "https://anything.example", True),
        (["*"], "null", True),
        (["https://app.example.com"], "null", False),
        ([], "https://app.example.com", False),
    ],
)
def test_allows(entries: list[str], origin: str, allowed: bool) -> None:
    assert AllowedOrigins(entries).allows(origin) is allowed


@pytest.mark.parametrize(
    "entry",
    [
        "https://app.example.com/",
        "app.example.com",
        "https://user@app.example.com",
        "https://app.*.com",
        "https://*",
        "http://localhost:8*",
        "https://app.example.com:123456",
        "",
    ],
)
def test_refused_entries(entry: str) -> None:
    assert not is_entry(entry)
    with pytest.raises(ValueError, match="not an origin"):
        AllowedOrigins([entry])
    with pytest.raises(ConfigError, match="FILEPIPE_ALLOWED_ORIGINS"):
        Settings.from_env({"FILEPIPE_ALLOWED_ORIGINS": f"https://ok.example,{entry or 'x'}"})


def test_patterns_are_settings() -> None:
    value = "http://localhost:*,http://127.0.0.1:*,https://*.example.com"
    settings = Settings.from_env({"FILEPIPE_ALLOWED_ORIGINS": value})
    assert settings.allowed_origins == tuple(value.split(","))
    assert not AllowedOrigins(())
