#!/usr/bin/env bash
# `make up`: run the whole pipeline in the foreground against the services on 127.0.0.1.
# Ctrl-C stops every process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash local/services.sh
export PATH="$PWD/.venv/bin:$PATH"
set -a; source local/filepipe.env; set +a
filepipe-admin migrate
exec honcho --procfile local/Procfile --app-root . --env local/filepipe.env start
