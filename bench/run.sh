#!/usr/bin/env bash
# `make bench`: the benchmarks, each printing ratios. Starts the pipeline (`make up`) for the
# latency and upload benchmarks and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
bash local/services.sh
$PY bench/process_throughput.py "$@"
$PY bench/query.py
$PY bench/presign.py

log=$(mktemp)
bash local/up.sh >"$log" 2>&1 &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  if curl -s -o /dev/null localhost:8081 && curl -s -o /dev/null localhost:8082 \
     && curl -s -o /dev/null localhost:8090/healthz; then break; fi
  sleep 0.5
done
$PY bench/pipeline_latency.py --files 200
$PY bench/upload.py
