"""Latency and throughput of the pipeline: from the end of each PUT to PROCESSED.

Starts the pipeline as ``make up`` runs it, on free ports and against names of its own (a
throw-away database, its own S3 server, RabbitMQ exchange and queues): the local S3 server, the
broker emulator, and the presign, process and notify functions (``python -m filepipe.server``,
with the gunicorn settings ``local/Procfile`` gives each). Then sends N small uploads from C
concurrent clients (``POST /uploads``, then the PUT to the presigned URL), waits until every file
is settled, and prints p50/p99 of ``processed_at`` minus the end of the PUT and files per second
from the first request to the last settled file, each beside its target (issue 14) as a ratio
(>= 1.00 meets it).

``--profile DIR`` samples every process of the stack with py-spy meanwhile (``py-spy record
--subprocesses``, in the dev extras) and writes the top functions of each process to
``DIR/top.txt`` (and the raw stacks to ``DIR/stacks.txt``).

Needs PostgreSQL, Redis and RabbitMQ on 127.0.0.1 (``local/services.sh``). Usage:
``python bench/pipeline_latency.py [--files 200] [--clients 8] [--profile DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import record  # noqa: E402
from filepipe import auth, db  # noqa: E402
from tests.conftest import throwaway_database  # noqa: E402
from tests.support.pipeline import pipeline  # noqa: E402
from tests.support.processes import running  # noqa: E402
from tests.support.waiting import free_port  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
TARGET_P50_MS = 250.0
TARGET_P99_MS = 1000.0
TARGET_FILES_PER_S = 150.0
SETTLED = ("PROCESSED", "REJECTED", "FAILED")
GUNICORN_SETTINGS = re.compile(r"\b(WORKERS|THREADS)=(\d+)")
"""What ``local/Procfile`` may set for a function's gunicorn (functions-framework reads them)."""


@dataclass(frozen=True)
class Sent:
    """One upload as its client saw it."""

    file_id: str
    post_ms: float
    put_ms: float
    put_end: datetime


@dataclass(frozen=True)
class Figures:
    files: int
    not_processed: int
    p50_ms: float
    p99_ms: float
    files_per_s: float
    stages: dict[str, float]
    """Median milliseconds of each stage of a file's way (where its time goes)."""


def procfile_settings(name: str) -> dict[str, str]:
    """The gunicorn settings ``local/Procfile`` starts process ``name`` with."""
    for line in (ROOT / "local" / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return dict(GUNICORN_SETTINGS.findall(line))
    return {}


@contextmanager
def migrated_database() -> Iterator[str]:
    """A migrated database of this run (its URL), dropped afterwards."""
    with throwaway_database(f"filepipe_bench_{uuid.uuid4().hex[:8]}") as url:
        db.migrate(url)
        yield url


def stack_env(logs: Path, database_url: str, s3_port: int) -> dict[str, str]:
    """What every process of the stack gets: this run's database, S3 server and names."""
    run_id = uuid.uuid4().hex[:8]
    return {
        "FILEPIPE_DATABASE_URL": database_url,
        "FILEPIPE_AMQP_URL": AMQP_URL,
        "FILEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "FILEPIPE_S3_BUCKET": "uploads",
        "FILEPIPE_S3_REGION": "us-east-1",
        "FILEPIPE_S3_ACCESS_KEY_ID": "filepipe-bench",
        "FILEPIPE_S3_SECRET_ACCESS_KEY": "filepipe-bench-secret",
        "FILEPIPE_S3_NOTIFY_EXCHANGE": f"filepipe-bench-{run_id}.minio-events",
        "FILEPIPE_S3_DATA_DIR": str(logs / "s3-data"),
        "FILEPIPE_S3_QUEUE_DIR": str(logs / "s3-queue"),
        "FILEPIPE_WEBHOOK_SECRET_KEYS": "csLnkkISqpRORNQFvFRgObOlj7Iy7KvAiN6mt-gHtYg=",
        "FILEPIPE_UPLOAD_TOKEN_SECRETS": "bench-upload-token-secret-0123456789abcdef",
        "FILEPIPE_UPLOAD_RATE": "100000",
        "FILEPIPE_UPLOAD_BURST": "100000",
    }


@contextmanager
def s3_server(logs: Path, env: dict[str, str]) -> Iterator[None]:
    port = int(env["FILEPIPE_S3_ENDPOINT_URL"].rsplit(":", 1)[1])
    server = ["-m", "local.s3_server", "--port", str(port)]
    with running(server, port=port, env=env, output=logs / "s3.log"):
        yield


@contextmanager
def local_stack(logs: Path) -> Iterator[tuple[str, str]]:
    """The pipeline as ``make up`` runs it; yields (presign URL, database URL)."""
    with ExitStack() as stack:
        database_url = stack.enter_context(migrated_database())
        s3_port, presign_port, notify_port = free_port(), free_port(), free_port()
        env = stack_env(logs, database_url, s3_port)
        stack.enter_context(s3_server(logs, env))
        pipe = stack.enter_context(
            pipeline(
                env,
                notify_url=f"http://127.0.0.1:{notify_port}",
                logs=logs,
                # make up's values, not the tests' quick ones
                FILEPIPE_LOCK_TTL="10",
                FILEPIPE_RECONCILE_GRACE="60",
                FILEPIPE_PING_INTERVAL="60",
                FILEPIPE_BROKER_BACKOFF_SCALE="1",
                **procfile_settings("process"),
            )
        )
        for name, port in (("presign", presign_port), ("notify", notify_port)):
            source = f"functions/{name}/main.py"
            args = ["-m", "filepipe.server", "--source", source, "--target", name]
            function_env = {**pipe.env, **procfile_settings(name)}
            function_env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(dir=logs)
            stack.enter_context(
                running(
                    [*args, "--port", str(port)],
                    port=port,
                    env=function_env,
                    output=logs / f"{name}.log",
                )
            )
        yield f"http://127.0.0.1:{presign_port}/uploads", database_url


def upload(session: requests.Session, presign_url: str, key: str, index: int) -> Sent:
    data = b"%PDF-1.7\n" + f"file {index} {time.time_ns()}".encode() + b"\n%%EOF\n"
    started = time.perf_counter()
    response = session.post(
        presign_url,
        headers={"Authorization": f"Bearer {key}"},
        json={
            "filename": f"bench-{index}.pdf",
            "content_type": "application/pdf",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    upload = body["upload"]
    posted = time.perf_counter()
    session.put(upload["url"], data=data, headers=upload["headers"], timeout=30).raise_for_status()
    put = time.perf_counter()
    return Sent(body["id"], 1000 * (posted - started), 1000 * (put - posted), datetime.now(UTC))


def measure(presign_url: str, database_url: str, count: int, clients: int) -> Figures:
    with psycopg.connect(database_url, autocommit=True) as conn:
        key = auth.create_key(conn, "bench")
    sessions = threading.local()

    def send(index: int) -> Sent:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        return upload(sessions.session, presign_url, key, index)

    started = datetime.now(UTC)
    with ThreadPoolExecutor(clients) as pool:
        sent = {upload.file_id: upload for upload in pool.map(send, range(count))}
    rows = settled_rows(database_url, list(sent), timeout=300.0)
    latencies = sorted(
        (settled - sent[file_id].put_end).total_seconds() * 1000 for file_id, _, settled in rows
    )
    elapsed = (max(settled for _, _, settled in rows) - started).total_seconds()
    uploaded = uploaded_at(database_url, list(sent))
    stages = {
        "client POST /uploads": [upload.post_ms for upload in sent.values()],
        "client PUT": [upload.put_ms for upload in sent.values()],
        "PUT end -> UPLOADED": [
            (uploaded[file_id] - sent[file_id].put_end).total_seconds() * 1000 for file_id in sent
        ],
        "UPLOADED -> PROCESSED": [
            (settled - uploaded[file_id]).total_seconds() * 1000 for file_id, _, settled in rows
        ],
    }
    return Figures(
        files=count,
        not_processed=sum(1 for _, status, _ in rows if status != "PROCESSED"),
        p50_ms=statistics.median(latencies),
        p99_ms=latencies[int(0.99 * (count - 1))],
        files_per_s=count / elapsed,
        stages={name: statistics.median(values) for name, values in stages.items()},
    )


def uploaded_at(database_url: str, file_ids: list[str]) -> dict[str, datetime]:
    """When each file's UPLOADED transaction started (its processing log row)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT file_id::text, min(created_at) FROM processing_logs"
            " WHERE file_id = ANY(%s::uuid[]) AND to_status = 'UPLOADED' GROUP BY file_id",
            (file_ids,),
        ).fetchall()
    return dict(rows)


def settled_rows(
    database_url: str, file_ids: list[str], *, timeout: float
) -> list[tuple[str, str, datetime]]:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT id::text, status, coalesce(processed_at, updated_at) FROM files"
                " WHERE id = ANY(%s::uuid[]) AND status = ANY(%s)",
                (file_ids, list(SETTLED)),
            ).fetchall()
            if len(rows) == len(file_ids):
                return rows
            if time.monotonic() > deadline:
                sys.exit(f"only {len(rows)} of {len(file_ids)} files settled before the timeout")
            time.sleep(0.2)  # polling the database for progress, not synchronising a test


@contextmanager
def profiled(directory: Path | None) -> Iterator[None]:
    """py-spy over every process this one started, while the block runs (if ``directory``)."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    spies = {
        pid: subprocess.Popen(
            [
                *(py_spy, "record", "--nonblocking", "--format", "raw", "--rate", "50"),
                *("--output", str(directory / f"{pid}.txt"), "--pid", str(pid)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in descendants(os.getpid())
    }
    try:
        yield
    finally:
        for spy in spies.values():
            spy.send_signal(signal.SIGINT)
        for spy in spies.values():
            spy.wait(60)
    tops = [top_functions(pid, directory / f"{pid}.txt") for pid in spies]
    (directory / "top.txt").write_text("".join(sorted(tops, key=_samples, reverse=True)))


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children...), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def top_functions(pid: int, stacks: Path, count: int = 15) -> str:
    """The functions most often on ``pid``'s stacks (inclusive), then the leaf functions
    (exclusive), as shares of its samples."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    lines = stacks.read_text().splitlines() if stacks.exists() else []
    for line in lines:
        frames, _, samples = line.rpartition(" ")
        calls = [call for call in frames.split(";") if not call.startswith("process ")]
        if not calls:
            continue
        total += int(samples)
        inclusive.update({call: int(samples) for call in set(calls)})
        leaf[calls[-1]] += int(samples)
    command = Path(f"/proc/{pid}/cmdline")
    name = command.read_bytes().replace(b"\0", b" ").decode()[:100] if command.exists() else ""
    out = [f"== {pid} {name}: {total} samples"]
    for title, counter in (("inclusive", inclusive), ("leaf", leaf)):
        out.append(f"  -- {title}")
        out += [
            f"  {100 * n / total:5.1f}%  {call[:150]}" for call, n in counter.most_common(count)
        ]
    return "\n".join(out) + "\n"


def _samples(top: str) -> int:
    return int(top.split(": ", 1)[1].split()[0]) if ": " in top else 0


def report(figures: Figures, clients: int) -> None:
    print(f"files                   {figures.files} ({figures.not_processed} not PROCESSED)")
    print(
        f"PUT end -> PROCESSED    p50 {figures.p50_ms:7.1f} ms"
        f"   target <= {TARGET_P50_MS:.0f} ms: {TARGET_P50_MS / figures.p50_ms:5.2f}"
    )
    print(
        f"                        p99 {figures.p99_ms:7.1f} ms"
        f"   target <= {TARGET_P99_MS:.0f} ms: {TARGET_P99_MS / figures.p99_ms:5.2f}"
    )
    print(
        f"throughput              {figures.files_per_s:7.1f} files/s"
        f" target >= {TARGET_FILES_PER_S:.0f}: {figures.files_per_s / TARGET_FILES_PER_S:5.2f}"
        f"   ({clients} clients, first request to last file settled)"
    )
    print("(ratios: target / measured for latencies, measured / target for throughput)")
    record("pipeline.p50", TARGET_P50_MS / figures.p50_ms, f"p50 {figures.p50_ms:.0f} ms")
    record("pipeline.p99", TARGET_P99_MS / figures.p99_ms, f"p99 {figures.p99_ms:.0f} ms")
    record(
        "pipeline.rate",
        figures.files_per_s / TARGET_FILES_PER_S,
        f"{figures.files_per_s:.1f} files/s, {clients} clients",
    )
    for name, median in figures.stages.items():
        print(f"  median {name:24} {median:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8, help="concurrent uploaders")
    parser.add_argument("--warmup", type=int, default=16, help="files sent before measuring")
    parser.add_argument("--profile", type=Path, help="py-spy the stack; results in this folder")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs here")
    args = parser.parse_args()
    with ExitStack() as stack:
        logs = args.logs or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        logs.mkdir(parents=True, exist_ok=True)
        presign_url, database_url = stack.enter_context(local_stack(logs))
        if args.warmup:
            measure(presign_url, database_url, args.warmup, args.clients)
        with profiled(args.profile):
            figures = measure(presign_url, database_url, args.files, args.clients)
    report(figures, args.clients)


if __name__ == "__main__":
    main()
