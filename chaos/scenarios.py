"""The faults of issue 13, one scenario each (``SCENARIOS``, in the order ``make chaos`` runs
them). A scenario injects its fault once a third of the uploads are over (or at once, where the
fault is the setting itself), holds it for the outage, heals it; ``runner`` does the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from chaos.notifications import Duplicator, publish_stale, source_queue
from chaos.runner import Run, Scenario
from filepipe.files.model import Status

STALE_NOTIFICATIONS = 200


@dataclass
class Outage:
    """The base: nothing to prepare, the outage held for its duration, promptness not judged."""

    name: str
    summary: str
    inject_at: float = 1 / 3

    def prepare(self, run: Run) -> None:
        pass

    def inject(self, run: Run) -> None:
        pass

    def hold(self, run: Run) -> None:
        run.hold_outage()

    def heal(self, run: Run) -> None:
        pass

    def late(self, run: Run, settled: dict[str, dict[str, Any]]) -> int | None:
        return None


@dataclass
class Kill(Outage):
    """kill -9 a component, start it again after the outage (same port, same environment)."""

    component: str = ""

    def inject(self, run: Run) -> None:
        run.stack[self.component].kill()

    def heal(self, run: Run) -> None:
        run.stack[self.component].start()


@dataclass
class Cut(Outage):
    """Cut the fault proxy in front of PostgreSQL or RabbitMQ for the outage."""

    proxy: str = ""

    def inject(self, run: Run) -> None:
        getattr(run.stack, self.proxy).cut()

    def heal(self, run: Run) -> None:
        getattr(run.stack, self.proxy).heal()


@dataclass
class Stall(Cut):
    """A network partition in front of PostgreSQL or RabbitMQ: connections hang, for the
    outage (what ``Cut`` does not show: waits bounded, dead connections noticed)."""

    def inject(self, run: Run) -> None:
        getattr(run.stack, self.proxy).stall()


@dataclass
class DuplicateNotifications(Outage):
    """Every notification of the uploads delivered twice."""

    inject_at: float = 0.0
    _duplicator: Duplicator | None = field(default=None, repr=False)

    def prepare(self, run: Run) -> None:
        env = run.stack.env
        self._duplicator = Duplicator(
            run.stack.amqp_url, env["FILEPIPE_S3_NOTIFY_EXCHANGE"], source_queue(env)
        )
        self._duplicator.start()

    def hold(self, run: Run) -> None:
        for tenant in run.tenants:
            tenant.uploads.wait(run.options.settle)

    def heal(self, run: Run) -> None:
        assert self._duplicator is not None
        self._duplicator.stop()


@dataclass
class SlowWebhook(Outage):
    """Another tenant's webhook endpoint trickles its answers for the outage; the main
    tenant's webhooks must keep arriving within ``Options.prompt`` of their event."""

    inject_at: float = 0.0

    def prepare(self, run: Run) -> None:
        run.tenant("chaos-slow", max(1, run.options.files // 4), trickle=True)

    def heal(self, run: Run) -> None:
        for tenant in run.tenants:
            tenant.receiver.heal()

    def late(self, run: Run, settled: dict[str, dict[str, Any]]) -> int | None:
        return sum(
            1
            for delivery in run.main.receiver.deliveries
            if delivery.age is None or delivery.age > run.options.prompt
        )


@dataclass
class StaleBacklog(Outage):
    """``STALE_NOTIFICATIONS`` notifications for objects that do not exist (files that never
    got their object) queued before the uploads; new files must settle within
    ``Options.prompt`` of their upload."""

    inject_at: float = 0.0

    def prepare(self, run: Run) -> None:
        stale = run.tenant("chaos-stale", 0)
        for index in range(STALE_NOTIFICATIONS):
            stale.uploads.client.create_upload(
                {"filename": f"gone-{index}.txt", "content_type": "text/plain", "size": 1}
            )
        with psycopg.connect(run.stack.database_url) as conn:
            objects = conn.execute(
                "SELECT bucket, key FROM files WHERE tenant = %s", (stale.name,)
            ).fetchall()
        env = run.stack.env
        publish_stale(
            run.stack.amqp_url,
            env["FILEPIPE_S3_NOTIFY_EXCHANGE"],
            env["FILEPIPE_S3_ENDPOINT_URL"],
            objects,
        )

    def hold(self, run: Run) -> None:
        run.main.uploads.wait(run.options.settle)

    def late(self, run: Run, settled: dict[str, dict[str, Any]]) -> int | None:
        uploaded_at = run.main.uploads.uploaded_at
        late = 0
        for file_id, at in uploaded_at.items():
            row = settled.get(file_id)
            if (
                row is None
                or not Status(row["status"]).settled
                or row["updated_at"].timestamp() - at > run.options.prompt
            ):
                late += 1
        return late


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Kill(
            "process-kill", "kill -9 the process function (master and workers)", component="process"
        ),
        Kill("broker-kill", "kill -9 the broker emulator", component="broker"),
        Cut("postgres-cut", "PostgreSQL unreachable (proxy cut)", proxy="postgres"),
        Cut("rabbitmq-cut", "RabbitMQ unreachable (proxy cut)", proxy="rabbitmq"),
        Stall("postgres-stall", "PostgreSQL partitioned: connections hang", proxy="postgres"),
        Kill("redis-down", "kill -9 Redis", component="redis"),
        DuplicateNotifications("duplicates", "every S3 notification published twice"),
        Kill(
            "s3-restart", "kill -9 the S3 server, start it with the same data dir", component="s3"
        ),
        SlowWebhook("slow-webhook", "one tenant's webhook receiver trickles bytes"),
        StaleBacklog("stale-backlog", "notifications queued for objects that do not exist"),
    )
}
