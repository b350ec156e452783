"""Configuration: a flag beats the environment; nothing set is a usage error."""

from __future__ import annotations

import pytest

from filepipe_client import Config, ConfigurationError

ENV = {"FILEPIPE_URL": "http://env.example:8080/", "FILEPIPE_API_KEY": "fpk_env"}


def test_the_environment_is_used_when_no_flag_is_given() -> None:
    config = Config.resolve(environ=ENV)
    assert (config.url, config.api_key) == ("http://env.example:8080", "fpk_env")


def test_flags_beat_the_environment() -> None:
    config = Config.resolve("https://flag.example", "fpk_flag", environ=ENV)
    assert (config.url, config.api_key) == ("https://flag.example", "fpk_flag")
    assert Config.resolve(None, "fpk_flag", environ=ENV).url == "http://env.example:8080"


def test_the_key_is_not_shown() -> None:
    assert "fpk_env" not in repr(Config.resolve(environ=ENV))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no server URL: set FILEPIPE_URL or pass --url"),
        ({"FILEPIPE_URL": "http://x"}, "no API key: set FILEPIPE_API_KEY or pass --api-key"),
        ({"FILEPIPE_URL": " ", "FILEPIPE_API_KEY": "k"}, "no server URL"),
    ],
)
def test_missing_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Config.resolve(environ=env)


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://host", "http://", "http://h/?q=1"])
def test_a_url_that_is_not_a_base_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        Config.resolve(url, "k", environ={})
