#!/usr/bin/env bash
# `make bench`: the benchmarks, each printing ratios, then every figure of issue 14 as a ratio
# against its target (bench/summary.py: each benchmark records its figures in $summary).
# The latency benchmark starts a stack of its own; the pipeline (`make up`) is started for the
# upload benchmark and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
summary=$(mktemp)
export FILEPIPE_BENCH_SUMMARY=$summary
bash local/services.sh
$PY bench/process_throughput.py "$@"
$PY bench/query.py
$PY bench/presign.py
$PY bench/pipeline_latency.py --files 200

log=$(mktemp)
bash local/up.sh >"$log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if curl -s -o /dev/null localhost:8081 && curl -s -o /dev/null localhost:8082 \
     && curl -s -o /dev/null localhost:8090/healthz; then break; fi
  sleep 0.5
done
$PY bench/upload.py

# Every figure, once all benchmarks above have recorded theirs (a new benchmark goes above).
$PY bench/summary.py "$summary"
