"""One scenario, start to end: stack up, tenants and observers, uploads, fault, heal, settle,
count; the stack comes down whatever happens.

The timeline of a run: uploads start at ``Options.rate`` a second; once ``inject_at`` of them
are over the scenario injects its fault, holds it (``Options.outage`` seconds for an outage),
and heals it. Files then have ``Options.settle`` seconds to settle (uploads still failing are
given up at the same deadline); once they have (or not), effects still in flight get a quiet
period before the duplicates are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from psycopg.rows import dict_row

from chaos.observers import EventWatcher, WebhookReceiver, webhook_receiver
from chaos.report import Row, Upload, tally
from chaos.stack import Stack, chaos_stack
from chaos.workload import Uploads, plan_files
from filepipe import auth
from filepipe.files.model import Status
from filepipe_client import Config

WEBHOOK_EVENTS = ["file.uploaded", "file.processed", "file.rejected", "file.failed", "file.missing"]
QUIET = 5.0
"""Seconds without a new event or webhook before the effects are counted."""
QUIET_LIMIT = 60.0


@dataclass(frozen=True)
class Options:
    files: int = 200
    outage: float = 120.0
    settle: float = 300.0
    """Seconds after healing within which every uploaded file must settle."""
    rate: float = 5.0
    """Uploads started a second."""
    prompt: float = 15.0
    """Seconds within which the promptness scenarios expect a webhook or a file settled."""


class Scenario(Protocol):
    name: str
    summary: str
    inject_at: float
    """The share of uploads over before the fault is injected."""

    def prepare(self, run: Run) -> None: ...
    def inject(self, run: Run) -> None: ...
    def hold(self, run: Run) -> None: ...
    def heal(self, run: Run) -> None: ...
    def late(self, run: Run, settled: dict[str, dict[str, Any]]) -> int | None: ...


@dataclass
class Tenant:
    name: str
    config: Config
    uploads: Uploads
    watcher: EventWatcher
    receiver: WebhookReceiver


@dataclass
class Run:
    """What a scenario works with."""

    stack: Stack
    options: Options
    exits: ExitStack
    tenants: list[Tenant] = field(default_factory=list)

    def tenant(self, name: str, files: int, *, trickle: bool = False) -> Tenant:
        """A tenant with an API key, a webhook endpoint, a WebSocket client and its uploads."""
        with psycopg.connect(self.stack.database_url, autocommit=True) as conn:
            key = auth.create_key(conn, name)
        config = Config(self.stack.url, key)
        receiver = self.exits.enter_context(webhook_receiver(trickle=trickle))
        answer = httpx.post(
            f"{config.url}/webhooks",
            json={"url": receiver.url, "events": WEBHOOK_EVENTS},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        answer.raise_for_status()
        watcher = EventWatcher(config)
        watcher.start()
        self.exits.callback(watcher.stop)
        planned = plan_files(self.stack.logs / "files" / name, files)
        uploads = Uploads(config, planned, rate=self.options.rate)
        self.exits.callback(uploads.close)
        made = Tenant(name, config, uploads, watcher, receiver)
        self.tenants.append(made)
        return made

    @property
    def main(self) -> Tenant:
        return self.tenants[0]

    def hold_outage(self) -> None:
        time.sleep(self.options.outage)  # the fault's duration, not a synchronisation

    def uploads(self) -> list[Upload]:
        return [upload for tenant in self.tenants for upload in tenant.uploads.uploads]

    def files(self) -> dict[str, dict[str, Any]]:
        """Every file of the run's tenants, by id (read directly, not through the proxy)."""
        names = [tenant.name for tenant in self.tenants]
        with psycopg.connect(
            self.stack.database_url, autocommit=True, row_factory=dict_row
        ) as conn:
            rows = conn.execute(
                "SELECT id::text, tenant, status, error, updated_at FROM files"
                " WHERE tenant = ANY(%s)",
                (names,),
            ).fetchall()
        return {row["id"]: row for row in rows}


def run_scenario(
    scenario: Scenario, options: Options, logs: Path, *, keep: Callable[[Stack], None] | None = None
) -> Row:
    """Run ``scenario`` on a stack of its own (logs in ``logs``); its row. ``keep`` is called
    with the stack before it comes down (``--keep``)."""
    with ExitStack() as exits:
        stack = exits.enter_context(chaos_stack(logs))
        if keep is not None:
            exits.callback(keep, stack)
        run = Run(stack, options, exits)
        run.tenant("chaos-main", options.files)
        scenario.prepare(run)
        for tenant in run.tenants:
            tenant.uploads.start()
        _wait_for(lambda: _over(run) >= scenario.inject_at * _planned(run), options.settle)
        scenario.inject(run)
        scenario.hold(run)
        scenario.heal(run)
        healed = time.monotonic()
        for tenant in run.tenants:
            tenant.uploads.deadline = healed + options.settle
        recovery = _settle(run, healed, options.settle)
        _quiet(run)
        files = run.files()
        uploads = run.uploads()
        row = tally(
            scenario.name,
            uploads,
            {file_id: row["status"] for file_id, row in files.items()},
            ws_duplicates=sum(t.watcher.duplicates for t in run.tenants),
            webhook_duplicates=sum(t.receiver.duplicates for t in run.tenants),
            answers=[c for t in run.tenants for c in t.uploads.transport.classes],
            late=scenario.late(run, files),
            recovery_s=recovery,
            not_uploaded=sum(len(t.uploads.failures) for t in run.tenants),
        )
    return row


def _planned(run: Run) -> int:
    return sum(len(t.uploads.planned) for t in run.tenants)


def _over(run: Run) -> int:
    return sum(t.uploads.finished() for t in run.tenants)


def _settle(run: Run, healed: float, timeout: float) -> float | None:
    """Seconds from ``healed`` until every upload is over and every uploaded file settled;
    None if that did not happen within ``timeout`` seconds of healing."""

    def all_settled() -> bool:
        if _over(run) < _planned(run):
            return False
        files = run.files()
        return all(
            u.file_id in files and Status(files[u.file_id]["status"]).settled for u in run.uploads()
        )

    if not _wait_for(all_settled, healed + timeout - time.monotonic(), interval=1.0):
        return None
    return max(0.0, time.monotonic() - healed)


def _quiet(run: Run) -> None:
    """Wait until no event or webhook arrived for ``QUIET`` seconds (at most ``QUIET_LIMIT``)."""

    def seen() -> int:
        return sum(len(t.watcher.ids) + len(t.receiver.deliveries) for t in run.tenants)

    last, since = seen(), time.monotonic()
    end = since + QUIET_LIMIT
    while time.monotonic() < end:
        time.sleep(0.5)
        now = seen()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET:
            return


def _wait_for(probe: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``probe`` until true (True) or ``timeout`` seconds pass (False)."""
    end = time.monotonic() + max(0.0, timeout)
    while not probe():
        if time.monotonic() > end:
            return False
        time.sleep(interval)
    return True
