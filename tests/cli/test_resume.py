"""Resuming: a multipart upload killed with SIGKILL completes when the same command runs again,
sending only the parts storage does not hold yet (counted in the S3 server's request log)."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path

from filepipe_client import File, Status
from tests.cli.conftest import MIB, PART, Cli, lines, pdf, sha256
from tests.support.stack import part_puts
from tests.support.waiting import wait_until

PARTS = 10
CONCURRENCY = 1


def _killed_after_a_part(cli: Cli, name: str, args: tuple[str, ...]) -> tuple[File, int]:
    """Run ``filepipe ARGS``, SIGKILL it once storage holds a part of the upload of ``name``;
    the file and how many parts storage held then."""
    first = cli.start(*args)
    with cli.client() as client:

        def created() -> File | None:
            return next(iter(client.list_files(filename=name).items), None)

        file = wait_until(created, timeout=30, interval=0.01, what="the upload to be created")
        wait_until(
            lambda: client.stored_parts(file.id).parts,
            timeout=30,
            interval=0.01,
            what="a part to be stored",
        )
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate(timeout=10)
        stored = len(client.stored_parts(file.id).parts)
    assert first.returncode == -signal.SIGKILL
    assert 1 <= stored < PARTS
    return file, stored


def test_a_killed_upload_resumes_sending_only_the_missing_parts(
    cli: Cli, tmp_path: Path, s3_log: Path
) -> None:
    name = f"resume-{uuid.uuid4().hex[:8]}.pdf"
    path = pdf(tmp_path / name, PARTS * 5 * MIB, seed=name)
    args = ("upload", str(path), "--part-size", PART, "--concurrency", str(CONCURRENCY))
    file, stored = _killed_after_a_part(cli, name, args)

    again = cli.run(*args)
    assert again.returncode == 0, again.stderr
    [line] = lines(again.stdout)
    assert f" id={file.id} " in line  # the same file and upload, resumed
    resumed = int(line.rsplit(" resumed=", 1)[1].split("/")[0])
    assert line.endswith(f" resumed={resumed}/{PARTS} parts")
    assert resumed >= stored
    with cli.client() as client:
        settled = client.wait(file.id, timeout=30)
    assert (settled.status, settled.sha256) == (Status.PROCESSED, sha256(path))
    puts = part_puts(s3_log, str(file.raw["key"]))
    assert sorted(set(puts)) == list(range(1, PARTS + 1))
    assert PARTS <= len(puts) <= PARTS + CONCURRENCY  # a part in flight at the kill, at most


def test_a_file_changed_since_the_interruption_needs_restart(cli: Cli, tmp_path: Path) -> None:
    name = f"changed-{uuid.uuid4().hex[:8]}.pdf"
    path = pdf(tmp_path / name, PARTS * 5 * MIB, seed=name)
    args = ("upload", str(path), "--part-size", PART, "--concurrency", str(CONCURRENCY))
    file, _ = _killed_after_a_part(cli, name, args)
    stat = path.stat()
    with path.open("r+b") as changed:  # the same size and time: only the bytes tell
        changed.seek(100)
        changed.write(b"changed")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    again = cli.run(*args)
    assert again.returncode == 1
    assert "changed since its upload began" in again.stderr
    assert again.stderr.rstrip().endswith("start over with --restart")

    restarted = cli.run(*args, "--restart", "--wait", "--json")
    assert restarted.returncode == 0, restarted.stderr
    fresh = json.loads(restarted.stdout)
    assert fresh["id"] != file.id
    assert (fresh["status"], fresh["sha256"]) == ("PROCESSED", sha256(path))
    with cli.client() as client:
        assert client.get_file(file.id).status == Status.CANCELLED
