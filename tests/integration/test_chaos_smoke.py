"""The chaos harness end to end, small: one scenario (Redis killed for 10 s, 10 uploads) on a
stack of its own, which must come down without a trace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import psycopg
import pytest

from chaos.runner import Options, run_scenario
from chaos.scenarios import SCENARIOS
from chaos.stack import ADMIN_URL, Stack
from tests.support.waiting import port_open

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("rabbitmqctl") is None or shutil.which("redis-server") is None,
        reason="the chaos stack makes its vhost with rabbitmqctl and runs its own redis-server",
    ),
]


def database_exists(url: str) -> bool:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return found is not None


def vhost_exists(amqp_url: str) -> bool:
    name = unquote(amqp_url.rsplit("/", 1)[1])
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True, check=True, timeout=60
    )
    return name in listed.stdout.split()


def test_a_short_redis_outage_settles_every_file_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    stacks: list[Stack] = []
    options = Options(files=10, outage=10, settle=40, rate=10)
    row = run_scenario(SCENARIOS["redis-down"], options, tmp_path / "run", keep=stacks.append)
    assert (row.error, row.uploaded, row.stuck, row.failed_good) == ("", 10, 0, 0)
    assert row.processed + row.rejected == 10
    assert row.recovery_s is not None
    assert (tmp_path / "run" / "process.log").stat().st_size > 0
    [stack] = stacks
    assert not database_exists(stack.database_url)
    assert not vhost_exists(stack.amqp_url)
    assert not any(c.alive or port_open(c.port) for c in stack.components.values())
