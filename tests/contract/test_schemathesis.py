"""Schemathesis against each HTTP function, run as a real process, with its own ``/openapi.json``.

For each function, ``schemathesis run`` (the CLI, as a developer would run it by hand) loads the
document the live function serves and tests every operation in it: schema examples, coverage
cases (boundaries, missing and malformed parts, methods the path does not list), derandomized
property-based cases (valid and invalid), and, where the document has links, stateful sequences.
Every response goes through all of schemathesis' checks: no 5xx; declared status, media type,
headers and body; valid input accepted, invalid input refused; auth enforced; 405 and ``Allow``
for other methods; a created resource readable, a deleted one gone. Settings are in
``schemathesis.toml`` next to this file, hooks in ``hooks.py``.

The functions run with every media type allowed and the largest upload size, so any
well-formed ``POST /uploads`` body can succeed (a 415 for a type off the allow-list is checked in
``tests/integration/test_openapi.py``).

Why the CLI and not schemathesis' pytest plugin: the plugin's fixture-loaded (lazy) schemas do not
work with pytest 9.2 (they set ``Node._nodeid``), and a schema loaded at collection time would
not be the one the live function serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from filepipe import openapi
from tests.contract.conftest import Tenant
from tests.support.contract import serve_command
from tests.support.processes import ROOT, running
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
FUNCTION_ENV = {
    "FILEPIPE_ALLOWED_CONTENT_TYPES": "*/*",
    "FILEPIPE_MAX_UPLOAD_BYTES": str(5 * 1024**4),
    "FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true",
}
RUN_TIMEOUT = 300


@pytest.mark.timeout(RUN_TIMEOUT + 60)
@pytest.mark.parametrize("function", openapi.FUNCTIONS)
def test_the_function_answers_as_its_own_document_says(
    function: str, service_env: dict[str, str], tenant: Tenant, tmp_path: Path
) -> None:
    port = free_port()
    with running(
        serve_command(function, port),
        port=port,
        env={**service_env, **FUNCTION_ENV},
        output=tmp_path / f"{function}.log",
    ):
        base_url = f"http://127.0.0.1:{port}"
        run = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli"),
                *("--config-file", str(HERE / "schemathesis.toml"), "--no-color"),
                *("run", f"{base_url}/openapi.json", "--url", base_url),
                *("--report", "junit", "--report-dir", str(tmp_path / "report")),
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "SCHEMATHESIS_HOOKS": "tests.contract.hooks",
                "FILEPIPE_CONTRACT_KEY": tenant.key,
                "FILEPIPE_CONTRACT_FILE_IDS": ",".join(tenant.file_ids),
                "FILEPIPE_CONTRACT_WEBHOOK_IDS": ",".join(tenant.webhook_ids),
            },
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    assert run.returncode == 0, (
        f"schemathesis found failures ({function} log: {tmp_path / f'{function}.log'})\n"
        + run.stdout
        + run.stderr
    )
