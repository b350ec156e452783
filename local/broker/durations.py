"""Time arithmetic of Knative delivery: ISO-8601 durations, retry backoff, PingSource schedules.

``backoffDelay`` and ``timeout`` of a DeliverySpec are ISO-8601 durations (``PT0.5S``, ``PT2S``,
``PT1M``). Knative waits ``backoffDelay * 2^n`` before retry ``n`` (n = 1, 2, …) with the
exponential policy and ``backoffDelay * n`` with the linear one
(https://knative.dev/docs/eventing/event-delivery/). A PingSource fires on a cron schedule;
the emulator only needs its period, derived here for the regular schedules.
"""

from __future__ import annotations

import re
from typing import Literal

from local.broker.errors import ManifestError

BackoffPolicy = Literal["exponential", "linear"]

_NUMBER = r"(\d+(?:[.,]\d+)?)"
_DURATION = re.compile(
    rf"P(?:{_NUMBER}W)?(?:{_NUMBER}D)?(?:T(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?",
    re.ASCII,
)
_UNIT_SECONDS = (7 * 86400, 86400, 3600, 60, 1)


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as ``PT0.5S``; years and months are refused."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()) or text.strip().endswith("T"):
        raise ManifestError(f"{text!r} is not an ISO-8601 duration of weeks/days/h/m/s")
    return sum(
        float(value.replace(",", ".")) * unit
        for value, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)
        if value is not None
    )


def backoff_delays(
    retry: int, policy: BackoffPolicy, delay: float, scale: float = 1.0
) -> list[float]:
    """Seconds to wait before each of the ``retry`` retries, multiplied by ``scale``."""
    if policy == "linear":
        return [delay * n * scale for n in range(1, retry + 1)]
    return [delay * 2**n * scale for n in range(1, retry + 1)]


def cron_interval(schedule: str) -> float:
    """The period in seconds of a regular cron schedule (``* * * * *`` → 60).

    Handles every-N-minutes, hourly, every-N-hours and daily schedules; anything else raises
    ``ManifestError`` so the caller sets an explicit interval instead.
    """
    fields = schedule.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"]:
        raise ManifestError(f"cannot derive an interval from schedule {schedule!r}")
    minute, hour = fields[0], fields[1]
    minute_step = _step(minute)
    if minute_step is not None and hour == "*":
        return 60.0 * minute_step
    if minute.isdigit():
        hour_step = _step(hour)
        if hour_step is not None:
            return 3600.0 * hour_step
        if hour.isdigit():
            return 86400.0
    raise ManifestError(f"cannot derive an interval from schedule {schedule!r}")


def _step(field: str) -> int | None:
    """``*`` → 1, ``*/n`` → n, anything else → None."""
    if field == "*":
        return 1
    base, sep, step = field.partition("/")
    if base == "*" and sep and step.isdigit() and int(step) > 0:
        return int(step)
    return None
