"""Every line the emulators print is a JSON object, tracebacks and failures included.

Real processes: the broker emulator and the local S3 server, with their stdout and stderr in one
file, provoked into the errors Python prints by itself (a client resetting its connection in the
middle of a request) and into their own (a bad setting, RabbitMQ unreachable).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.emulators.test_broker import cleanup, emulator_env, write_manifests
from tests.support.processes import ROOT, running
from tests.support.receiver import receiving
from tests.support.waiting import free_port, wait_until

pytestmark = pytest.mark.integration

MANIFESTS = (
    "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
    "---\n{trigger: notes, type: test.note, service: notify}"
)


def reset_mid_request(port: int) -> None:
    """Send half a request line and headers, then reset the connection (RST, not FIN)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def records(path: Path) -> list[dict[str, object]]:
    """Every line of ``path`` parsed as a JSON object (fails on the first line that is not)."""
    parsed = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"not JSON: {line!r}") from exc
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


def logged(path: Path, text: str) -> bool:
    return text in path.read_text()


def test_broker_output_is_json_even_for_tracebacks(tmp_path: Path) -> None:
    write_manifests(tmp_path, MANIFESTS)
    prefix = f"test.{uuid.uuid4().hex[:8]}"
    port = free_port()
    output = tmp_path / "broker.log"
    with receiving() as receiver:
        env = {**emulator_env(tmp_path, receiver, port, prefix), "FILEPIPE_PING_INTERVAL": "0"}
        try:
            with running(["-m", "local.broker"], port=port, env=env, output=output):
                reset_mid_request(port)
                wait_until(lambda: logged(output, "ConnectionResetError"), what="the traceback")
        finally:
            cleanup(prefix, ["notes"])
    lines = records(output)
    [broken] = [r for r in lines if "ConnectionResetError" in str(r.get("exc_info"))]
    assert broken["function"] == "broker"


def test_broker_configuration_error_is_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "local.broker"],
        cwd=ROOT,
        env={**os.environ, "FILEPIPE_BROKER_PORT": "seventy"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    (tmp_path / "out.log").write_text(done.stdout + done.stderr)
    [record] = records(tmp_path / "out.log")
    assert record["level"] == "ERROR"
    assert "FILEPIPE_BROKER_PORT" in str(record["message"])


def test_s3_server_output_is_json_with_rabbitmq_unreachable(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    port = free_port()
    output = tmp_path / "s3.log"
    env = {
        **s3_env,
        "FILEPIPE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        "FILEPIPE_S3_QUEUE_DIR": str(tmp_path / "queue"),
    }
    with running(["-m", "local.s3_server", "--port", str(port)], port=port, env=env, output=output):
        reset_mid_request(port)
        settings = Settings.from_env(
            {**env, "FILEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        )
        create_s3_client(settings).put_object(Bucket="uploads", Key="logs/a.txt", Body=b"a")
        wait_until(lambda: logged(output, "queued notification(s) wait"), what="a retry failing")
    lines = records(output)
    assert any(
        r.get("function") == "s3" and "uploads/logs/a.txt queued" in str(r["message"])
        for r in lines
    )
