"""The query function under load: what the Redis cache buys, and what a deep page costs.

Starts the query function (functions-framework, as in production) on a free port against a
database of its own, and prints:
- requests per second of ``GET /files/{id}`` served from the cache, and with the cache off
  (``FILEPIPE_CACHE_TTL=0``: every answer read from PostgreSQL), and their ratio;
- the ratio of the cached rate to a trivial route of the same server (``GET /openapi.json``, a
  precomputed body: the cost of the HTTP stack alone), and the rate of ``GET /files`` pages;
- p50 latency of ``GET /files`` first and deep pages (unfiltered and ``status=``) with 1,000
  rows and with 1,000,000 rows of the tenant, and the 1M/1k ratio (target < 1.5: keyset pages
  cost the same however deep or large the table).

Needs PostgreSQL and Redis on 127.0.0.1 (``local/services.sh``). Usage:
``python bench/query.py [--seconds 5] [--clients 8] [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import itertools
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import record  # noqa: E402
from filepipe import auth, db  # noqa: E402
from filepipe.files.model import Status  # noqa: E402
from filepipe.files.store import FileFilters, Position  # noqa: E402
from filepipe.query.cursors import CursorCodec, scope_digest  # noqa: E402
from tests.support.processes import running  # noqa: E402
from tests.support.waiting import free_port  # noqa: E402

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CURSOR_SECRET = "bench-cursor-secret-0123456789"  # noqa: S105 - a throw-away database
TENANT = "bench"
SMALL = 1000
INSERT_ROWS = """
INSERT INTO files (id, tenant, bucket, key, filename, declared_content_type, declared_size,
                   status, sha256, size_bytes, content_type, upload_expires_at, created_at,
                   updated_at, processed_at)
SELECT gen_random_uuid(), %(tenant)s, 'uploads', %(tenant)s || '/' || g, 'f' || mod(g, 1000),
       'application/pdf', 1000,
       (ARRAY['PROCESSED', 'PROCESSED', 'PROCESSED', 'REJECTED', 'PENDING'])[1 + mod(g, 5)],
       CASE WHEN mod(g, 5) < 3 THEN md5(g::text) || md5((g + 1)::text) END,
       1000, 'application/pdf', '2026-01-01', '2026-01-01'::timestamptz - g * interval '1 ms',
       '2026-01-01', '2026-01-01'
FROM generate_series(%(first)s::int, %(last)s::int) AS g
"""


@contextmanager
def database() -> Iterator[str]:
    name = f"filepipe_bench_query_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        db.migrate(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def add_rows(url: str, first: int, last: int) -> float:
    started = time.monotonic()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(INSERT_ROWS, {"tenant": TENANT, "first": first, "last": last})
        conn.execute("VACUUM ANALYZE files")
    return time.monotonic() - started


@contextmanager
def query_function(url: str, cache_ttl: float) -> Iterator[int]:
    port = free_port()
    env = {
        "FILEPIPE_DATABASE_URL": url,
        "FILEPIPE_CACHE_TTL": str(cache_ttl),
        "FILEPIPE_CURSOR_SECRET": CURSOR_SECRET,
        "FILEPIPE_LOG_LEVEL": "WARNING",
        "FILEPIPE_DB_POOL_MAX": "8",
    }
    args = ["-m", "filepipe.server", "--source", "functions/query/main.py"]
    with running([*args, "--target", "query", "--port", str(port)], port=port, env=env):
        yield port


def throughput(
    port: int, paths: Sequence[str], key: str | None, *, seconds: float, clients: int
) -> float:
    """Requests per second from ``clients`` keep-alive connections, after a short warm-up."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    counts = [0] * clients
    stop, counting = threading.Event(), threading.Event()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for path in itertools.cycle(paths[index::clients] or paths):
            if stop.is_set():
                break
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"GET {path} answered {response.status}")
            if counting.is_set():
                counts[index] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # warm-up (a load generator's pacing, not test synchronisation)
    counting.set()
    started = time.monotonic()
    time.sleep(seconds)
    total, elapsed = sum(counts), time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    return total / elapsed


def interleaved(rounds: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The median of each run over ``rounds`` rounds that alternate the runs, so that the drift
    of a shared machine hits every run alike."""
    results: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return {name: statistics.median(values) for name, values in results.items()}


def p50_ms(port: int, path: str, key: str, *, requests: int = 100) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    timings = []
    for index in range(requests + 10):
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}")
        if index >= 10:
            timings.append((time.perf_counter() - started) * 1000)
    conn.close()
    return statistics.median(timings)


def page_paths(url: str, depth: int) -> dict[str, str]:
    """First and deep page of the unfiltered and the ``status=PROCESSED`` list."""
    codec = CursorCodec(CURSOR_SECRET.encode())
    paths = {}
    with psycopg.connect(url) as conn:
        for label, filters, where in (
            ("all", FileFilters(), ""),
            ("status", FileFilters(status=Status.PROCESSED), " AND status = 'PROCESSED'"),
        ):
            row = conn.execute(
                f"SELECT created_at, id FROM files WHERE tenant = %s{where}"  # noqa: S608
                " ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
                (TENANT, depth if not where else depth * 3 // 5),
            ).fetchone()
            assert row is not None
            cursor = codec.encode(
                Position(row[0], row[1]), scope_digest(TENANT, filters.canonical())
            )
            query = "?status=PROCESSED" if where else "?"
            paths[f"{label} first"] = f"/files{query}"
            paths[f"{label} deep"] = f"/files{query}&cursor={cursor}".replace("?&", "?")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    with ExitStack() as stack:
        small_url, large_url = stack.enter_context(database()), stack.enter_context(database())
        keys = {}
        for url in (small_url, large_url):
            with psycopg.connect(url, autocommit=True) as conn:
                keys[url] = auth.create_key(conn, TENANT)
        add_rows(small_url, 0, SMALL - 1)
        seconds = add_rows(large_url, 0, args.rows - 1)
        print(f"(inserted {args.rows:,} rows in {seconds:.0f} s)")
        with psycopg.connect(small_url) as conn:
            ids = [str(r[0]) for r in conn.execute("SELECT id FROM files LIMIT 100")]
        files = [f"/files/{file_id}" for file_id in ids]
        key = keys[small_url]

        cached = stack.enter_context(query_function(small_url, cache_ttl=300))
        uncached = stack.enter_context(query_function(small_url, cache_ttl=0))
        large = stack.enter_context(query_function(large_url, cache_ttl=300))

        rates = {}
        for clients in (1, args.clients):
            run = functools.partial(throughput, seconds=args.seconds, clients=clients)
            rates[clients] = interleaved(
                args.rounds,
                {
                    "trivial": functools.partial(run, cached, ["/openapi.json"], None),
                    "cached": functools.partial(run, cached, files, key),
                    "uncached": functools.partial(run, uncached, files, key),
                    "list": functools.partial(run, cached, ["/files"], key),
                },
            )

        small_pages = page_paths(small_url, SMALL - 60)
        large_pages = page_paths(large_url, args.rows - 60)
        runs: dict[str, Callable[[], float]] = {}
        for name in small_pages:
            runs[f"{name} small"] = functools.partial(
                p50_ms, cached, small_pages[name], keys[small_url]
            )
            runs[f"{name} large"] = functools.partial(
                p50_ms, large, large_pages[name], keys[large_url]
            )
        latency = interleaved(args.rounds, runs)

    print(f"{'req/s':<36} {'1 client':>9} {f'{args.clients} clients':>11}")
    for name, label in (
        ("trivial", "trivial route (GET /openapi.json)"),
        ("cached", "GET /files/{id} cached"),
        ("uncached", "GET /files/{id} uncached (TTL 0)"),
        ("list", "GET /files (a page of 50)"),
    ):
        print(f"{label:<36} {rates[1][name]:9.0f} {rates[args.clients][name]:11.0f}")
    for figure, label, top, bottom in (
        ("query.cached_uncached", "cached / uncached", "cached", "uncached"),
        ("query.cached_trivial", "cached / trivial route", "cached", "trivial"),
    ):
        one, many = (rates[n][top] / rates[n][bottom] for n in (1, args.clients))
        print(f"{label:<36} {one:9.2f} {many:11.2f}")
        record(figure, min(one, many), f"{one:.2f} with 1 client, {many:.2f} with {args.clients}")
    print(f"GET /files p50 ms          {SMALL:>9,} rows {args.rows:>10,} rows   ratio")
    worst = 0.0
    for name in small_pages:
        small, big = latency[f"{name} small"], latency[f"{name} large"]
        worst = max(worst, big / small)
        print(f"  {name:<22} {small:14.2f} {big:15.2f} {big / small:7.2f}")
    print(f"worst {args.rows:,}/{SMALL:,} ratio {worst:.2f} (target < 1.5)")
    record("query.deep_pages", 1.5 / worst, f"worst {args.rows:,}/{SMALL:,} rows ratio {worst:.2f}")


if __name__ == "__main__":
    main()
