"""No secret reaches the logs of a full run: S3 server, broker, process and notify as processes
(output captured), presign and the webhook API in-process (stdout captured)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from filepipe import auth, runtime
from tests.support.functions import function_app
from tests.support.pipeline import pipeline, presign_client
from tests.support.processes import running
from tests.support.receiver import receiving
from tests.support.uploads import put, request_upload
from tests.support.waiting import free_port
from tests.support.webhooks import register, verified

pytestmark = pytest.mark.integration

Conn = psycopg.Connection[dict[str, Any]]
PDF = b"%PDF-1.7\n" + b"secret-free " * 50 + b"\n%%EOF\n"


def test_a_full_run_logs_no_api_key_webhook_secret_or_url_signature(
    function_env: dict[str, str],
    s3_env: dict[str, str],
    conn: Conn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tenant = f"sec-{uuid.uuid4().hex[:8]}"
    key = auth.create_key(conn, tenant)
    s3_port, notify_port = free_port(), free_port()
    webhook_env = {"FILEPIPE_WEBHOOK_ALLOW_LOOPBACK": "true", "FILEPIPE_LOG_LEVEL": "DEBUG"}
    for name, value in webhook_env.items():
        monkeypatch.setenv(name, value)

    with (
        receiving() as hooks,
        running(
            ["-m", "local.s3_server", "--port", str(s3_port)],
            port=s3_port,
            env={**s3_env, "FILEPIPE_LOG_LEVEL": "INFO"},
            output=tmp_path / "s3.log",
        ),
        pipeline(
            function_env,
            notify_url=f"http://127.0.0.1:{notify_port}",
            logs=tmp_path,
            FILEPIPE_S3_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}",
            **webhook_env,
        ) as pipe,
        running(
            [
                *("-m", "filepipe.server", "--target", "notify"),
                *("--source", "functions/notify/main.py", "--port", str(notify_port)),
            ],
            port=notify_port,
            env=pipe.env,
            output=tmp_path / "notify.log",
        ),
    ):
        hook = register(
            function_app("notify", "webhooks").test_client(),
            key,
            hooks.url + "/hook",
            ["file.processed"],
        )
        presign = presign_client(pipe, monkeypatch)
        runtime.reset()  # presign signs for this run's S3 server and publishes to its broker
        upload = request_upload(presign, key, PDF)
        put(upload, PDF)
        [delivered] = hooks.wait_for("/hook", timeout=30)
        assert verified(hook["secret"], delivered)["data"]["file_id"] == upload["id"]

    in_process = capsys.readouterr().out
    outputs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
    assert set(outputs) == {"s3.log", "broker.log", "process.log", "notify.log"}
    assert '"PUT /uploads/' in outputs["s3.log"]  # the access log saw the presigned PUT
    signed = parse_qs(urlsplit(upload["upload"]["url"]).query)
    secrets = {
        "API key": key,
        "webhook secret": hook["secret"],
        "webhook secret body": hook["secret"].removeprefix("whsec_"),
        "URL signature": signed["X-Amz-Signature"][0],
    }
    for name, text in {**outputs, "in-process": in_process}.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in the {name} output"
        assert not re.search(r"X-Amz-Credential=(?!\*\*\*)", text), name
        for line in filter(str.strip, text.splitlines()):
            assert isinstance(json.loads(line), dict), f"{name}: {line!r} is not a JSON object"
    file_lines = [
        record
        for name in ("process.log", "notify.log")
        for record in map(json.loads, filter(str.strip, outputs[name].splitlines()))
        if record.get("file_id") == upload["id"]
    ]
    assert {r["function"] for r in file_lines} == {"process", "notify"}
    assert len({r["trace_id"] for r in file_lines}) == 1  # one trace across the processes
