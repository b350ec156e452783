"""The process function's own capacity: small files verified per second, the broker out of the way.

Starts a throw-away database, the local S3 server and the process function (``python -m
filepipe.server`` with the gunicorn settings of ``local/Procfile``), its events going to a
recording sink instead of the broker. Stores N small objects with PENDING files, then POSTs their
object-created notifications as the broker does (binary CloudEvents, the event token) from C
concurrent senders (the Trigger's parallelism) and prints files per second and the p50/p99 of
one notification's answer. What the pipeline reaches (``bench/pipeline_latency.py``) can be no
more than this.

Needs PostgreSQL and Redis on 127.0.0.1. Usage:
``python bench/process_capacity.py [--files 400] [--senders 16]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline_latency import (  # noqa: E402
    migrated_database,
    procfile_settings,
    s3_server,
    stack_env,
)
from filepipe.config import Settings  # noqa: E402
from filepipe.process.bucket_events import RABBITMQ_EVENT, redrive_notification  # noqa: E402
from filepipe.storage import create_s3_client  # noqa: E402
from filepipe.web.senders import TOKEN_HEADER  # noqa: E402
from tests.support.processes import running  # noqa: E402
from tests.support.receiver import receiving  # noqa: E402
from tests.support.waiting import free_port  # noqa: E402

EVENT_TOKEN = "bench-event-token-0123456789"  # noqa: S105 - a bench value
TRIGGER_PARALLELISM = 16
"""The process Trigger's parallelism (``knative/eventing/triggers.yaml``)."""


def stored_files(env: dict[str, str], count: int) -> list[tuple[str, int, str]]:
    """``count`` small PDF objects, each with a PENDING file; their (key, size, etag)."""
    settings = Settings.from_env(env)
    s3 = create_s3_client(settings)
    objects = []
    with psycopg.connect(env["FILEPIPE_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (name) VALUES ('bench') ON CONFLICT DO NOTHING")
        for index in range(count):
            data = b"%PDF-1.7\n" + f"file {index} {uuid.uuid4()}".encode() + b"\n%%EOF\n"
            key = f"bench/{uuid.uuid4()}/file.pdf"
            etag = s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=data)["ETag"]
            conn.execute(
                "INSERT INTO files (id, tenant, bucket, key, filename, declared_content_type,"
                " declared_size, declared_sha256, upload_expires_at)"
                " VALUES (%s, 'bench', %s, %s, 'file.pdf', 'application/pdf', %s, %s, %s)",
                (
                    uuid.uuid4(),
                    settings.s3_bucket,
                    key,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                    datetime.now(UTC) + timedelta(hours=1),
                ),
            )
            objects.append((key, len(data), etag.strip('"')))
    return objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--senders", type=int, default=TRIGGER_PARALLELISM)
    args = parser.parse_args()
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = stack.enter_context(migrated_database())
        env = stack_env(logs, database_url, free_port())
        stack.enter_context(s3_server(logs, env))
        sink = stack.enter_context(receiving())
        port = free_port()
        process_env = {
            **env,
            **procfile_settings("process"),
            "K_SINK": sink.url,
            "FILEPIPE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "FILEPIPE_EVENT_TOKEN": EVENT_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=logs),
        }
        source = ["--source", "functions/process/main.py", "--target", "process"]
        stack.enter_context(
            running(
                ["-m", "filepipe.server", *source, "--port", str(port)],
                port=port,
                env=process_env,
                output=logs / "process.log",
            )
        )
        objects = stored_files(env, args.files)
        seconds, elapsed = send_all(f"http://127.0.0.1:{port}/", env, objects, args.senders)
        with psycopg.connect(database_url) as conn:
            processed = conn.execute("SELECT count(*) FROM files WHERE status = 'PROCESSED'")
            done = processed.fetchone()
    seconds.sort()
    print(f"process capacity        {len(objects) / elapsed:7.1f} files/s ({args.senders} senders,")
    print(f"                        {done[0] if done else 0} of {len(objects)} PROCESSED)")
    print(f"one notification        p50 {1000 * statistics.median(seconds):7.1f} ms")
    print(f"                        p99 {1000 * seconds[int(0.99 * (len(seconds) - 1))]:7.1f} ms")


def send_all(
    url: str, env: dict[str, str], objects: list[tuple[str, int, str]], senders: int
) -> tuple[list[float], float]:
    """POST every notification; each one's seconds, and the seconds of them all."""
    bucket = env["FILEPIPE_S3_BUCKET"]
    sessions = threading.local()

    def send(item: tuple[str, int, str]) -> float:
        key, size, etag = item
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        body = json.dumps(redrive_notification(bucket, key, size, etag))
        headers = {
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-type": RABBITMQ_EVENT,
            "ce-source": "/bench/process-capacity",
            "content-type": "application/json",
            TOKEN_HEADER: EVENT_TOKEN,
        }
        started = time.perf_counter()
        sessions.session.post(url, data=body, headers=headers, timeout=60).raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        seconds = list(pool.map(send, objects))
    return seconds, time.perf_counter() - started


if __name__ == "__main__":
    main()
