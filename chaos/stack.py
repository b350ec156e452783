"""The chaos suite's own stack: every process of ``make up``, isolated and breakable.

Per scenario: a PostgreSQL database and a RabbitMQ vhost of its own (created here, dropped on
exit), a ``redis-server`` child on a free port, the local S3 server, the broker emulator, every
function (``python -m filepipe.server`` as ``local/Procfile`` starts them), the gateway and the
front, each on a free port with its output in ``<run dir>/<name>.log``. PostgreSQL and RabbitMQ
are reached through ``FaultProxy`` instances (every component connects through them); the
harness itself talks to both directly, so it can observe during an outage. Each component can be
killed with SIGKILL and started again on the same port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
from cryptography.fernet import Fernet

from filepipe import db
from tests.support.faultproxy import FaultProxy, behind
from tests.support.redis_server import redis_server_argv
from tests.support.waiting import free_port, port_open, wait_until

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = os.environ.get(
    "FILEPIPE_CHAOS_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672
START_TIMEOUT = 60.0
EVENT_TOKEN = "chaos-event-token-0123456789"  # noqa: S105 - a throw-away development token

FUNCTIONS = {
    "presign": "functions/presign/main.py",
    "process": "functions/process/main.py",
    "query": "functions/query/main.py",
    "notify": "functions/notify/main.py",
    "webhooks": "functions/notify/main.py",
}

TUNING = {
    "FILEPIPE_STUCK_AFTER": "20",
    "FILEPIPE_PING_INTERVAL": "5",
    "FILEPIPE_RECONCILE_GRACE": "20",
}
"""Recovery settings short enough that a scenario settles in minutes (reconcile every 5 s,
files unchanged for 20 s re-driven, PENDING ones included); every other setting keeps its
production default."""


@dataclass
class Component:
    """One child process (its own process group) listening on ``port``."""

    name: str
    argv: Sequence[str]
    port: int
    env: Mapping[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def launch(self) -> None:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=ROOT,
                env={**os.environ, **self.env},
                start_new_session=True,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        proc = self.proc
        assert proc is not None, f"{self.name} was not launched"
        wait_until(
            lambda: proc.poll() is not None or port_open(self.port),
            timeout=timeout,
            interval=0.1,
            what=f"{self.name} to listen on {self.port}",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {proc.returncode}; see {self.log}")

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL the whole process group (a gunicorn master and its workers alike); return
        once its port is free for the next start."""
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # the group is gone already
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
        wait_until(lambda: not port_open(self.port), timeout=timeout, what=f"{self.name} port")


@dataclass
class Stack:
    """A running chaos stack (``chaos_stack``)."""

    url: str
    """The front: what clients use as ``FILEPIPE_URL``."""
    database_url: str
    """Direct (not proxied): what the harness observes with."""
    amqp_url: str
    """Direct (not proxied), in the stack's vhost."""
    env: dict[str, str]
    components: dict[str, Component]
    postgres: FaultProxy
    rabbitmq: FaultProxy
    logs: Path

    def __getitem__(self, name: str) -> Component:
        return self.components[name]


@contextmanager
def chaos_stack(logs: Path) -> Iterator[Stack]:
    """Start the stack, logs in ``logs``; everything is stopped and dropped on exit."""
    logs.mkdir(parents=True, exist_ok=True)
    run = uuid.uuid4().hex[:10]
    with _shielded(ExitStack()) as stack:
        direct_db = stack.enter_context(_database(f"filepipe_chaos_{run}"))
        vhost = stack.enter_context(_vhost(f"filepipe-chaos-{run}"))
        target = urlsplit(direct_db)
        postgres = stack.enter_context(
            FaultProxy(target.hostname or "127.0.0.1", target.port or 5432)
        )
        rabbitmq = stack.enter_context(FaultProxy(AMQP_HOST, AMQP_PORT))
        ports = {
            name: free_port() for name in (*FUNCTIONS, "gateway", "front", "redis", "s3", "broker")
        }
        env = _environment(direct_db, vhost, postgres, rabbitmq, ports, logs) | TUNING
        components = _components(ports, env, logs)
        stack.callback(_stop_all, list(components.values()))
        for component in components.values():
            component.launch()
        for component in components.values():
            component.wait_ready()
        yield Stack(
            url=f"http://127.0.0.1:{ports['front']}",
            database_url=direct_db,
            amqp_url=_amqp_url(AMQP_PORT, vhost),
            env=env,
            components=components,
            postgres=postgres,
            rabbitmq=rabbitmq,
            logs=logs,
        )


def _environment(
    database_url: str,
    vhost: str,
    postgres: FaultProxy,
    rabbitmq: FaultProxy,
    ports: Mapping[str, int],
    logs: Path,
) -> dict[str, str]:
    """What every component gets: ``local/filepipe.env``'s values, pointed at this stack."""
    return {
        "FILEPIPE_DATABASE_URL": behind(database_url, postgres),
        "FILEPIPE_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
        "FILEPIPE_AMQP_URL": _amqp_url(rabbitmq.port, vhost),
        "FILEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{ports['s3']}",
        "FILEPIPE_S3_BUCKET": "uploads",
        "FILEPIPE_S3_REGION": "us-east-1",
        "FILEPIPE_S3_ACCESS_KEY_ID": "filepipe-chaos",
        "FILEPIPE_S3_SECRET_ACCESS_KEY": "filepipe-chaos-secret",
        "FILEPIPE_S3_NOTIFY_EXCHANGE": "minio-events",
        # Where the S3 server keeps objects and unpublished notifications, if it supports them.
        "FILEPIPE_S3_DATA_DIR": str(logs / "s3-data"),
        "FILEPIPE_S3_QUEUE_DIR": str(logs / "s3-queue"),
        "K_SINK": f"http://127.0.0.1:{ports['broker']}/",
        "FILEPIPE_BROKER_PORT": str(ports["broker"]),
        "FILEPIPE_SUBSCRIBERS": (
            f"process=http://127.0.0.1:{ports['process']},notify=http://127.0.0.1:{ports['notify']}"
        ),
        "FILEPIPE_EVENT_TOKEN": EVENT_TOKEN,
        "PYTHONUNBUFFERED": "1",
        "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true",
        "FILEPIPE_WEBHOOK_PORTS": "1024-65535",
        "FILEPIPE_CURSOR_SECRET": f"chaos-cursor-secret-{uuid.uuid4().hex}",
        "FILEPIPE_WEBHOOK_SECRET_KEYS": _fernet_key(),
        "FILEPIPE_UPLOAD_TOKEN_SECRETS": f"chaos-upload-token-secret-{uuid.uuid4().hex}",
        "FILEPIPE_ALLOWED_ORIGINS": "http://localhost:*,http://127.0.0.1:*",
    }


@contextmanager
def _shielded(stack: ExitStack) -> Iterator[ExitStack]:
    """``stack``, closed with Ctrl-C and SIGTERM ignored, so that a second Ctrl-C cannot leave
    processes, a database or a vhost behind."""
    try:
        yield stack
    finally:
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
        try:
            stack.close()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _components(
    ports: Mapping[str, int], env: Mapping[str, str], logs: Path
) -> dict[str, Component]:
    python = sys.executable
    argv: dict[str, list[str]] = {
        "redis": redis_server_argv(ports["redis"], logs),
        "s3": [python, "-m", "local.s3_server", "--port", str(ports["s3"])],
        "broker": [python, "-m", "local.broker"],
    }
    for name, source in FUNCTIONS.items():
        argv[name] = [
            python,
            "-m",
            "filepipe.server",
            "--source",
            source,
            "--target",
            name,
            "--host",
            "127.0.0.1",
            "--port",
            str(ports[name]),
        ]
    argv["gateway"] = [
        python,
        "-m",
        "filepipe.notify.gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(ports["gateway"]),
    ]
    upstreams = {
        "presign": ports["presign"],
        "query": ports["query"],
        "webhooks": ports["webhooks"],
        "gateway": ports["gateway"],
    }
    flags = [
        arg
        for name, port in upstreams.items()
        for arg in ("--upstream", f"{name}=http://127.0.0.1:{port}")
    ]
    argv["front"] = [
        python,
        "-m",
        "local.front",
        *flags,
        "--host",
        "127.0.0.1",
        "--port",
        str(ports["front"]),
    ]
    return {
        name: Component(name, args, ports[name], env, logs / f"{name}.log")
        for name, args in argv.items()
    }


def _stop_all(components: Sequence[Component]) -> None:
    """Kill every component; one that will not die does not keep the others alive."""
    for component in components:
        try:
            component.kill()
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            log.error("%s did not stop: %s", component.name, exc)


@contextmanager
def _database(name: str) -> Iterator[str]:
    """A migrated database of this stack (its direct URL), dropped afterwards."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        db.migrate(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _vhost(name: str) -> Iterator[str]:
    """A RabbitMQ vhost of this stack (guest may use it), deleted afterwards with its queues."""
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        _rabbitmqctl("delete_vhost", name)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _amqp_url(port: int, vhost: str) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}:{port}/{quote(vhost, safe='')}"


def _fernet_key() -> str:
    return Fernet.generate_key().decode()
