"""Latency of the running pipeline (``make up``): from the end of the PUT to PROCESSED.

Sends N small uploads from C concurrent clients (POST /uploads, then PUT to the presigned URL)
to the pipeline on its local ports, waits until every file is settled, and prints p50/p99 of
``processed_at`` minus the end of the PUT, and files per second from the first request to the
last settled file.

Usage: with ``make up`` running, ``python bench/pipeline_latency.py [--files 200]``
(``bench/run.sh`` starts the pipeline itself).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[1]
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/filepipe"
PRESIGN_URL = "http://127.0.0.1:8081/uploads"


def create_key() -> str:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/filepipe-admin"), "create-key", "--tenant", "bench"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def upload(session: requests.Session, key: str, index: int) -> tuple[str, datetime]:
    data = b"%PDF-1.7\n" + f"file {index} {time.time_ns()}".encode() + b"\n%%EOF\n"
    response = session.post(
        PRESIGN_URL,
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
    session.put(upload["url"], data=data, headers=upload["headers"], timeout=30).raise_for_status()
    return body["id"], datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8, help="concurrent uploaders")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    count = args.files
    key = create_key()
    sessions = threading.local()

    def send(index: int) -> tuple[str, datetime]:
        if not hasattr(sessions, "session"):
            sessions.session = requests.Session()
        return upload(sessions.session, key, index)

    started = datetime.now(UTC)
    with ThreadPoolExecutor(args.clients) as pool:
        put_done = dict(pool.map(send, range(count)))

    deadline = time.monotonic() + args.timeout
    with psycopg.connect(DATABASE_URL) as conn:
        while True:
            rows = conn.execute(
                "SELECT id::text, status, coalesce(processed_at, updated_at) FROM files"
                " WHERE id = ANY(%s::uuid[]) AND status IN ('PROCESSED', 'REJECTED', 'FAILED')",
                (list(put_done),),
            ).fetchall()
            if len(rows) == count or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # polling the database for progress, not synchronising a test
    if len(rows) < count:
        sys.exit(f"only {len(rows)} of {count} files settled before the timeout")
    latencies = sorted(
        (settled - put_done[file_id]).total_seconds() * 1000 for file_id, _, settled in rows
    )
    not_processed = sum(1 for _, status, _ in rows if status != "PROCESSED")
    elapsed = (max(settled for _, _, settled in rows) - started).total_seconds()
    print(f"files                   {count} ({not_processed} not PROCESSED)")
    print(f"PUT end -> PROCESSED    p50 {statistics.median(latencies):7.1f} ms")
    print(f"                        p99 {latencies[int(0.99 * (count - 1))]:7.1f} ms")
    print(
        f"throughput              {count / elapsed:7.1f} files/s ({args.clients} clients,"
        " from the first request to the last file settled)"
    )


if __name__ == "__main__":
    main()
