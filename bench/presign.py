"""presign beside Uppy Companion: ``POST /uploads`` against Companion's ``GET /s3/params``.

Starts, on free ports, what both need: the local S3 server (``local.s3_server``, its own data
directory and notification exchange), a throw-away database, the broker emulator
(``local.broker``, its subscribers a recording receiver) and a trivial ``K_SINK`` (a receiver
answering 200), presign twice under ``python -m filepipe.server`` (as ``make up`` runs it: one
publishing to the broker emulator, one to the trivial sink), and Uppy Companion 6.2.2
(``@uppy/companion`` from npm, installed once into ``.local/bench/companion``, its standalone
server signing for the same S3 endpoint, bucket and key pair). Then runs
``wrk -t2 -c<clients>`` against each in turn, ``--rounds`` times alternated, and prints the
median requests per second, the ratio presign / Companion (target >= 1.0) and presign's own
capacity (the broker out of the way). Companion signs a form POST and writes nothing; presign
also writes the row, its log and its ``file.created`` event: the script checks at the end that
every answered upload has its row and that every event reached its sink.

Needs wrk (``apt-get install wrk``), npm, and PostgreSQL, Redis and RabbitMQ on 127.0.0.1
(``local/services.sh``). Usage: ``python bench/presign.py [--seconds 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import record  # noqa: E402
from filepipe import auth, db  # noqa: E402
from tests.conftest import throwaway_database  # noqa: E402
from tests.support.broker import broker_emulator  # noqa: E402
from tests.support.processes import running  # noqa: E402
from tests.support.receiver import receiving  # noqa: E402
from tests.support.sink import accepting  # noqa: E402
from tests.support.waiting import free_port, wait_until  # noqa: E402

COMPANION = "@uppy/companion@6.2.2"
COMPANION_DIR = ROOT / ".local/bench/companion"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
S3 = {
    "FILEPIPE_S3_BUCKET": "uploads",
    "FILEPIPE_S3_REGION": "us-east-1",
    "FILEPIPE_S3_ACCESS_KEY_ID": "bench-presign",
    "FILEPIPE_S3_SECRET_ACCESS_KEY": "bench-presign-secret",
}
UPLOAD_BODY = '{"filename":"bench.pdf","content_type":"application/pdf","size":1048576}'
TARGET = 1.0


def install_companion() -> Path:
    """Companion's standalone server (installed with npm on first use)."""
    start = COMPANION_DIR / "node_modules/@uppy/companion/bin/companion"
    if not start.exists():
        COMPANION_DIR.mkdir(parents=True, exist_ok=True)
        npm = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(COMPANION_DIR)]
        subprocess.run(
            [*npm, COMPANION],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return start


@contextmanager
def companion(s3_url: str, logs: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "COMPANION_PORT": str(port),
        "COMPANION_DOMAIN": f"127.0.0.1:{port}",
        "COMPANION_SECRET": uuid.uuid4().hex,
        "COMPANION_DATADIR": str(logs),
        "COMPANION_AWS_KEY": S3["FILEPIPE_S3_ACCESS_KEY_ID"],
        "COMPANION_AWS_SECRET": S3["FILEPIPE_S3_SECRET_ACCESS_KEY"],
        "COMPANION_AWS_BUCKET": S3["FILEPIPE_S3_BUCKET"],
        "COMPANION_AWS_REGION": S3["FILEPIPE_S3_REGION"],
        "COMPANION_AWS_ENDPOINT": s3_url,
        "COMPANION_AWS_FORCE_PATH_STYLE": "true",
        # required in production mode: where Companion may upload to, and browser origins
        "COMPANION_UPLOAD_URLS": r"^http://127\.0\.0\.1:.*",
        "COMPANION_CLIENT_ORIGINS": "http://localhost:3000",
        "COMPANION_PREAUTH_SECRET": uuid.uuid4().hex,
        "NODE_ENV": "production",
    }
    with (logs / "companion.log").open("ab") as out:
        proc = subprocess.Popen(
            ["node", str(install_companion())], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/"), timeout=30, what="Companion")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(url: str) -> bool:
    return subprocess.run(["curl", "-sf", "-o", "/dev/null", url], check=False).returncode == 0


@contextmanager
def presign(
    env: dict[str, str], sink: str, logs: Path, name: str, tree: Path = ROOT
) -> Iterator[str]:
    """presign as ``make up`` runs it, from the source ``tree`` (another checkout: a baseline)."""
    port = free_port()
    source = str(tree / "functions/presign/main.py")
    args = ["-m", "filepipe.server", "--source", source, "--target"]
    env = {**env, "K_SINK": sink, "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=logs)}
    if tree != ROOT:
        env["PYTHONPATH"] = f"{tree / 'shared'}:{tree}:{ROOT}"
    output = logs / f"{name}.log"
    with running([*args, "presign", "--port", str(port)], port=port, env=env, output=output):
        yield f"http://127.0.0.1:{port}"


REQUESTS_PER_SECOND = re.compile(r"Requests/sec:\s+([0-9.]+)")
REFUSED = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: connect [1-9].*")


def wrk(url: str, *, script: Path | None, seconds: int, clients: int) -> float:
    """Requests per second wrk measured (-t2); any non-2xx answer or refused connection fails."""
    args = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", url]
    if script is not None:
        args[1:1] = ["-s", str(script)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    if error := REFUSED.search(out):
        raise SystemExit(f"wrk against {url}: {error[0]}\n{out}")
    match = REQUESTS_PER_SECOND.search(out)
    assert match is not None, out
    return float(match[1])


def post_script(directory: Path, key: str) -> Path:
    script = directory / "post-uploads.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{UPLOAD_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    return script


def interleaved(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The median of each run over ``rounds`` rounds alternating the runs, so the drift of a
    shared machine hits every run alike."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return {name: statistics.median(values) for name, values in results.items()}


def settled(url: str) -> tuple[int, int]:
    """Rows made, and their events still unpublished."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM files),"
            " (SELECT count(*) FROM events WHERE published_at IS NULL)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32, help="wrk connections (-c)")
    parser.add_argument("--only", choices=["broker", "sink"], help="measure one presign alone")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also measure presign (with the broker) from this checkout, e.g. a git worktree of"
        " an older commit: before and after in the same run",
    )
    args = parser.parse_args()
    for tool in ("wrk", "npm", "node", "curl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (apt-get install {tool})")
    install_companion()
    run_id = uuid.uuid4().hex[:8]
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-presign-")))
        url = stack.enter_context(throwaway_database(f"filepipe_bench_presign_{run_id}"))
        db.migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            key = auth.create_key(conn, "bench-presign")
        s3_port = free_port()
        s3_env = {
            **S3,
            "FILEPIPE_AMQP_URL": AMQP_URL,
            "FILEPIPE_S3_NOTIFY_EXCHANGE": f"bench-presign-{run_id}.minio-events",
            "FILEPIPE_S3_DATA_DIR": str(logs / "s3/data"),
            "FILEPIPE_S3_QUEUE_DIR": str(logs / "s3/queue"),
        }
        s3_args = ["-m", "local.s3_server", "--port", str(s3_port)]
        stack.enter_context(running(s3_args, port=s3_port, env=s3_env, output=logs / "s3.log"))
        s3_url = f"http://127.0.0.1:{s3_port}"
        subscribers = stack.enter_context(receiving())
        sink = stack.enter_context(accepting())
        env = {
            **s3_env,
            "FILEPIPE_DATABASE_URL": url,
            "FILEPIPE_S3_ENDPOINT_URL": s3_url,
            "FILEPIPE_UPLOAD_RATE": "1000000",
            "FILEPIPE_UPLOAD_BURST": "1000000",
            "FILEPIPE_MAX_PENDING_FILES": "100000000",
            "FILEPIPE_MAX_PENDING_BYTES": str(2**62),
        }
        broker_port = free_port()
        broker_env = {
            **env,
            "FILEPIPE_BROKER_PORT": str(broker_port),
            "FILEPIPE_BROKER_PREFIX": f"bench-presign-{run_id}",
            "FILEPIPE_SUBSCRIBERS": f"process={subscribers.url},notify={subscribers.url}",
            "FILEPIPE_PING_INTERVAL": "0",
        }
        broker = stack.enter_context(
            broker_emulator(broker_env, port=broker_port, output=logs / "broker.log")
        )
        script = post_script(logs, key)
        run = functools.partial(wrk, seconds=args.seconds, clients=args.clients)
        runs: dict[str, Callable[[], float]] = {}
        if args.only != "sink":
            with_broker = stack.enter_context(presign(env, broker, logs, "presign-broker"))
            runs["presign"] = functools.partial(run, f"{with_broker}/uploads", script=script)
        if args.only != "broker":
            alone = stack.enter_context(presign(env, sink, logs, "presign-sink"))
            runs["presign, trivial sink"] = functools.partial(
                run, f"{alone}/uploads", script=script
            )
        if args.baseline is not None:
            before = stack.enter_context(presign(env, broker, logs, "baseline", args.baseline))
            runs["presign (baseline)"] = functools.partial(run, f"{before}/uploads", script=script)
        if args.only is None:
            params = f"{stack.enter_context(companion(s3_url, logs))}/s3/params"
            runs["companion"] = functools.partial(
                run, f"{params}?filename=bench.pdf&type=application/pdf", script=None
            )
        print(f"uptime: {os.getloadavg()[0]:.2f} load; wrk -t2 -c{args.clients} -d{args.seconds}s")
        rates = interleaved(args.rounds, runs)
        wait_until(lambda: settled(url)[1] == 0, timeout=120, what="every event published")
        files, unpublished = settled(url)
    for name, rate in rates.items():
        print(f"{name:<28} {rate:8.0f} req/s")
    if "companion" in rates:
        for name in [name for name in rates if name.startswith("presign")]:
            ratio = rates[name] / rates["companion"]
            print(f"{name} / companion: {ratio:.2f} (target >= {TARGET})")
        if "presign" in rates:
            record(
                "presign.companion",
                rates["presign"] / rates["companion"],
                f"{rates['presign']:.0f} vs {rates['companion']:.0f} req/s",
            )
    print(f"rows written {files}, events unpublished {unpublished}")


if __name__ == "__main__":
    main()
