"""The operator CLI's arguments: durations, times, and what each command accepts."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone

import pytest

from filepipe.cli import build_parser, duration, lifetime, moment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90d", timedelta(days=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        ("3600", timedelta(hours=1)),
        ("0", timedelta(0)),
        (" 12H ", timedelta(hours=12)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "1x", "h1", "1h 30m", "-5s", "1e9", "200y", "9" * 12])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_a_lifetime_is_longer_than_zero() -> None:
    assert lifetime("1s") == timedelta(seconds=1)
    with pytest.raises(argparse.ArgumentTypeError):
        lifetime("0s")


def test_times_need_an_offset() -> None:
    assert moment("2030-01-01T00:00:00Z") == datetime(2030, 1, 1, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    assert moment("2030-01-01T02:00:00+02:00") == datetime(2030, 1, 1, 2, tzinfo=plus_two)
    for bad in ("2030-01-01T00:00:00", "tomorrow", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            moment(bad)


def test_commands_and_their_options() -> None:
    parser = build_parser()
    create = parser.parse_args(["create-key", "--tenant", "acme", "--expires-in", "30d"])
    assert (create.tenant, create.expires_in, create.expires_at) == ("acme", timedelta(30), None)
    rotate = parser.parse_args(["rotate-key", "fpk_abcd1234", "--grace", "1h"])
    assert (rotate.key_id, rotate.grace, rotate.name) == ("fpk_abcd1234", timedelta(hours=1), None)
    assert parser.parse_args(["rotate-key", "x"]).grace == timedelta(0)
    listing = parser.parse_args(["list-keys", "--json"])
    assert (listing.json, listing.tenant) == (True, None)
    with pytest.raises(SystemExit):
        parser.parse_args(
            ["create-key", "--tenant", "a", "--expires-in", "1d", "--expires-at", "2030-01-01Z"]
        )
    with pytest.raises(SystemExit):
        parser.parse_args(["revoke-key"])
