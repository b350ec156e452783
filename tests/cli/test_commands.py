"""``ls``, ``status``, ``rm`` and ``watch`` against the running stack."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import uuid
from pathlib import Path

from filepipe_client import SingleUpload
from tests.cli.conftest import Cli, lines, no_escapes, pdf
from tests.support.waiting import wait_until

ID = r"id=([0-9a-f-]{36})"


def _uploaded(cli: Cli, tmp_path: Path, *names: str) -> list[str]:
    paths = [pdf(tmp_path / name, 1500, seed=uuid.uuid4().hex) for name in names]
    done = cli.run("upload", *map(str, paths), "--wait")
    assert done.returncode == 0, done.stderr
    return re.findall(ID, "\n".join(lines(done.stdout)[: len(names)]))


def test_ls_shows_a_table_or_json_lines(cli: Cli, tmp_path: Path) -> None:
    first, second = _uploaded(cli, tmp_path, "one.pdf", "two.pdf")

    table = cli.run("ls")
    assert table.returncode == 0, table.stderr
    header, *rows = lines(table.stdout)
    assert header.split() == ["id", "name", "status", "size", "created"]
    assert [row.split()[:4] for row in rows] == [
        [second, "two.pdf", "PROCESSED", "1.5"],
        [first, "one.pdf", "PROCESSED", "1.5"],
    ]
    assert no_escapes([table.stdout])

    as_json = [json.loads(line) for line in lines(cli.run("ls", "--json").stdout)]
    assert [(f["id"], f["filename"]) for f in as_json] == [(second, "two.pdf"), (first, "one.pdf")]

    page = cli.run("ls", "--limit", "1", "--json")
    assert [json.loads(line)["id"] for line in lines(page.stdout)] == [second]
    assert "more files than shown" in page.stderr
    every = cli.run("ls", "--limit", "1", "--all", "--json")
    assert [json.loads(line)["id"] for line in lines(every.stdout)] == [second, first]
    assert every.stderr == ""

    named = cli.run("ls", "--filename", "one.pdf", "--status", "processed", "--json")
    assert [json.loads(line)["id"] for line in lines(named.stdout)] == [first]


def test_status_shows_the_file(cli: Cli, tmp_path: Path) -> None:
    [file_id] = _uploaded(cli, tmp_path, "shown.pdf")
    done = cli.run("status", file_id)
    assert done.returncode == 0, done.stderr
    fields = dict(line.split(None, 1) for line in lines(done.stdout) if " " in line.strip())
    assert fields["id"].strip() == file_id
    assert fields["status"].strip() == "PROCESSED"
    assert fields["name"].strip() == "shown.pdf"


def test_rm_deletes_the_file(cli: Cli, tmp_path: Path) -> None:
    [file_id] = _uploaded(cli, tmp_path, "gone.pdf")
    done = cli.run("rm", file_id)
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout) == [f"deleted {file_id}"]
    status = json.loads(cli.run("status", file_id, "--json").stdout)
    assert status["status"] == "DELETED"
    fetched = cli.run("get", file_id, "-o", str(tmp_path / "gone-again.pdf"))
    assert fetched.returncode == 5
    assert not (tmp_path / "gone-again.pdf").exists()


class _Watcher:
    """``filepipe watch`` running, its stdout lines collected as they come."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.proc = cli.start("watch", *args)
        self.lines: list[str] = []
        self.opened = threading.Event()
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("filepipe: watching"):
                self.opened.set()

    def stop(self) -> int:
        """Ctrl-C; the exit code once the command and its output have ended."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        finally:
            for reader in self.readers:
                reader.join(10)
            for stream in (self.proc.stdout, self.proc.stderr):
                assert stream is not None
                stream.close()
        return code


def _processed_seen(watcher: _Watcher, file_id: str) -> None:
    try:
        wait_until(
            lambda: any(f"file.processed {file_id} PROCESSED" in line for line in watcher.lines),
            timeout=30,
            what="the processed event",
        )
    finally:
        assert watcher.stop() == 0


def test_watch_prints_a_line_per_event(cli: Cli, tmp_path: Path) -> None:
    watcher = _Watcher(cli)
    assert watcher.opened.wait(15), "the watch did not open"
    [file_id] = _uploaded(cli, tmp_path, "watched.pdf")
    _processed_seen(watcher, file_id)
    assert all(re.fullmatch(r"\S+ file\.\w+ [0-9a-f-]{36} [A-Z]+", line) for line in watcher.lines)
    mine = [line.split()[1:] for line in watcher.lines if file_id in line]
    assert mine[-2:] == [
        ["file.uploaded", file_id, "UPLOADED"],
        ["file.processed", file_id, "PROCESSED"],
    ]


def test_watch_of_one_file_leaves_the_others_out(cli: Cli, tmp_path: Path) -> None:
    data = pdf(tmp_path / "mine.pdf", 1500, seed=uuid.uuid4().hex).read_bytes()
    with cli.client() as client:
        created = client.create_upload(
            {
                "filename": "mine.pdf",
                "content_type": "application/pdf",
                "size": len(data),
                "multipart": False,
            }
        )
        watcher = _Watcher(cli, "--file", created.file.id)
        assert watcher.opened.wait(15), "the watch did not open"
        _uploaded(cli, tmp_path, "theirs.pdf")  # events the filter leaves out
        assert isinstance(created.upload, SingleUpload)
        client.put(created.upload.url, created.upload.headers, data)
    _processed_seen(watcher, created.file.id)
    assert watcher.lines and all(created.file.id in line for line in watcher.lines)
