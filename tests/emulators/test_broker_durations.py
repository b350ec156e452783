"""ISO-8601 durations, retry backoff schedules and PingSource intervals."""

from __future__ import annotations

import pytest

from local.broker.durations import backoff_delays, cron_interval, parse_duration
from local.broker.errors import ManifestError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT0.5S", 0.5),
        ("PT2S", 2.0),
        ("PT1M", 60.0),
        ("PT1H30M", 5400.0),
        ("P1D", 86400.0),
        ("P1W", 604800.0),
        ("PT0,25S", 0.25),
        ("P1DT1S", 86401.0),
    ],
)
def test_parses_iso8601_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "1S", "PT-1S", "P1Y", "P1M", "PT1.S"])
def test_refuses_what_is_not_a_duration_of_fixed_length(text: str) -> None:
    with pytest.raises(ManifestError):
        parse_duration(text)


def test_exponential_backoff_doubles_from_twice_the_delay() -> None:
    assert backoff_delays(5, "exponential", 0.5) == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_linear_backoff_grows_by_the_delay() -> None:
    assert backoff_delays(3, "linear", 2.0) == [2.0, 4.0, 6.0]


def test_backoff_is_scaled_and_empty_without_retries() -> None:
    assert backoff_delays(2, "exponential", 0.5, scale=0.01) == pytest.approx([0.01, 0.02])
    assert backoff_delays(0, "linear", 1.0) == []


@pytest.mark.parametrize(
    ("schedule", "seconds"),
    [
        ("* * * * *", 60),
        ("*/5 * * * *", 300),
        ("0 * * * *", 3600),
        ("15 */6 * * *", 21600),
        ("30 2 * * *", 86400),
    ],
)
def test_derives_the_period_of_regular_schedules(schedule: str, seconds: float) -> None:
    assert cron_interval(schedule) == seconds


@pytest.mark.parametrize("schedule", ["* * * *", "0 0 1 * *", "1,2 * * * *", "*/0 * * * *"])
def test_refuses_schedules_without_a_fixed_period(schedule: str) -> None:
    with pytest.raises(ManifestError):
        cron_interval(schedule)
