"""Every figure of issue 14 as a ratio against its target, from one ``make bench`` run.

A benchmark calls ``record(figure, ratio, detail)``; when ``FILEPIPE_BENCH_SUMMARY`` names a file
(``bench/run.sh`` sets it) one JSON line is appended there, so the benchmarks stay separate
scripts and the table is printed once at the end: ``python bench/summary.py FILE``. Each ratio
reads "higher is better" and is compared with its target in ``FIGURES`` (the one place targets
live); a figure no benchmark recorded in the run is listed as missing, not left out.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SUMMARY = "FILEPIPE_BENCH_SUMMARY"
FIGURES = {
    # 200 small files from 8 clients, PUT end -> PROCESSED (bench/pipeline_latency.py)
    "pipeline.p50": ("250 ms / p50 of PUT end -> PROCESSED", 1.0),
    "pipeline.p99": ("1 s / p99 of PUT end -> PROCESSED", 1.0),
    "pipeline.rate": ("files/s / 150 files/s", 1.0),
    # presign beside Uppy Companion's GET /s3/params, same run (the presign benchmark)
    "presign.companion": ("POST /uploads / Companion GET /s3/params, req/s", 1.0),
    # bench/query.py
    "query.cached_trivial": ("cached GET /files/{id} / trivial route, req/s", 0.9),
    "query.cached_uncached": ("cached / uncached GET /files/{id}, req/s", 2.0),
    "query.deep_pages": ("1.5 / GET /files p50 ratio 1M rows / 1k rows", 1.0),
    # bench/process_throughput.py
    "process.bare": ("process code / bare GET + SHA-256 script, MB/s", 0.95),
    "process.floor": ("process code / min(raw GET, hashlib) (0.8 with spare cores)", 0.8),
}


def record(figure: str, ratio: float, detail: str = "") -> None:
    """Add ``figure``'s ratio to this run's summary (nothing without ``FILEPIPE_BENCH_SUMMARY``)."""
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}: add it to FIGURES with its target")
    path = os.environ.get(SUMMARY)
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps({"figure": figure, "ratio": ratio, "detail": detail}) + "\n")


def main(path: str) -> None:
    recorded = {}
    for line in Path(path).read_text().splitlines():
        entry = json.loads(line)
        recorded[entry["figure"]] = entry
    print(f"\n{'issue 14 figure':<62} {'ratio':>6} {'target':>7}")
    for figure, (label, target) in FIGURES.items():
        entry = recorded.get(figure)
        if entry is None:
            print(f"{label:<62} {'-':>6} {target:>7.2f}  missing (no benchmark recorded it)")
            continue
        verdict = "met" if entry["ratio"] >= target else "NOT met"
        detail = f"  ({entry['detail']})" if entry["detail"] else ""
        print(f"{label:<62} {entry['ratio']:6.2f} {target:>7.2f}  {verdict}{detail}")


if __name__ == "__main__":
    main(sys.argv[1])
