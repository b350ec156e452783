"""``python -m chaos``'s options and scenario catalogue."""

from __future__ import annotations

import pytest

from chaos.__main__ import parse
from chaos.scenarios import SCENARIOS


def test_the_catalogue_holds_the_scenarios_of_issue_13_and_a_partition() -> None:
    assert list(SCENARIOS) == [
        "process-kill",
        "broker-kill",
        "postgres-cut",
        "rabbitmq-cut",
        "postgres-stall",
        "redis-down",
        "duplicates",
        "s3-restart",
        "slow-webhook",
        "stale-backlog",
    ]


def test_defaults_are_the_issue_s_campaign() -> None:
    args = parse([])
    assert (args.scenario, args.files, args.outage, args.keep) == (None, 200, 120.0, False)


def test_scenarios_repeat_and_options_parse() -> None:
    args = parse(["--scenario", "redis-down", "--scenario", "duplicates", "--files", "30"])
    assert args.scenario == ["redis-down", "duplicates"]
    assert args.files == 30


@pytest.mark.parametrize(
    "argv",
    [["--scenario", "no-such"], ["--files", "0"], ["--outage", "-1"], ["--rate", "0"]],
)
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
