"""The ``filepipe`` command as a subprocess against the whole stack behind ``local.front``.

The stack's limits are small so that tests are quick: uploads up to ``MAX_UPLOAD`` bytes, and
multipart above ``THRESHOLD`` when the client leaves the choice to the server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from filepipe import auth
from filepipe_client import Client, Config
from tests.support.processes import ROOT
from tests.support.stack import Stack, full_stack

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
MAX_UPLOAD = 64 * MIB
THRESHOLD = 5 * MIB
PART = "5MiB"
CLIENT_SOURCE = ROOT / "clients" / "python" / "src"


@pytest.fixture(scope="package")
def stack(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Shared by this package's tests and stopped after them: its broker emulator consumes the
    session S3 server's notifications, which other tests' pipelines must receive."""
    with full_stack(
        service_env,
        logs=tmp_path_factory.mktemp("stack"),
        FILEPIPE_MAX_UPLOAD_BYTES=str(MAX_UPLOAD),
        FILEPIPE_MULTIPART_THRESHOLD=str(THRESHOLD),
        FILEPIPE_CURSOR_SECRET="cli-tests-cursor-secret",
    ) as running:
        yield running


@dataclass(frozen=True)
class Cli:
    """Runs ``filepipe`` (this tree's ``clients/python``) with the stack's URL and a key."""

    url: str
    key: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(CLIENT_SOURCE),
            "FILEPIPE_URL": self.url,
            "FILEPIPE_API_KEY": self.key,
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "filepipe_client", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def client(self) -> Client:
        """The library itself, to look at what the command did."""
        return Client(Config(self.url, self.key))


@pytest.fixture
def api_key(conn: psycopg.Connection[dict[str, Any]]) -> str:
    """A key of a tenant of this test alone."""
    return auth.create_key(conn, f"cli-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def cli(stack: Stack, api_key: str) -> Cli:
    return Cli(stack.url, api_key)


def pdf(path: Path, size: int, seed: str = "") -> Path:
    """A file of ``size`` bytes that sniffs as a PDF, different for each ``seed``."""
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
    block = hashlib.sha256(seed.encode() or os.urandom(16)).digest() * 32768  # 1 MiB
    body = (block * (size // len(block) + 1))[: size - len(head) - len(tail)]
    path.write_bytes(head + body + tail)
    return path


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def no_escapes(texts: Sequence[str]) -> bool:
    return all("\x1b" not in text for text in texts)
