"""``filepipe upload`` end to end: one PUT or parts, ``--wait``, the bytes back with ``get``."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from tests.cli.conftest import MIB, PART, Cli, lines, pdf, sha256
from tests.support.stack import part_puts

ID = r"id=([0-9a-f-]{36})"


def test_a_small_file_is_processed_and_comes_back_the_same(cli: Cli, tmp_path: Path) -> None:
    path = pdf(tmp_path / "small.pdf", 3000, seed=uuid.uuid4().hex)
    done = cli.run("upload", str(path), "--metadata", "project=apollo", "--wait")
    assert done.returncode == 0, done.stderr
    uploaded, settled = lines(done.stdout)
    assert re.fullmatch(rf"uploaded small\.pdf 2\.9 KiB {ID} status=PENDING", uploaded)
    file_id = re.findall(ID, uploaded)[0]
    assert settled == f"processed small.pdf 2.9 KiB id={file_id} status=PROCESSED"

    status = json.loads(cli.run("status", file_id, "--json").stdout)
    assert (status["sha256"], status["metadata"]) == (sha256(path), {"project": "apollo"})
    back = tmp_path / "back"
    back.mkdir()
    got = cli.run("get", file_id, "-o", str(back))
    assert got.returncode == 0, got.stderr
    assert (back / "small.pdf").read_bytes() == path.read_bytes()
    assert [p.name for p in back.iterdir()] == ["small.pdf"]  # no temporary file left


def test_a_large_file_goes_in_parts_and_comes_back_the_same(
    cli: Cli, tmp_path: Path, s3_log: Path
) -> None:
    path = pdf(tmp_path / "parts.pdf", 12 * MIB + 123, seed=uuid.uuid4().hex)
    done = cli.run("upload", str(path), "--part-size", PART, "--wait", "--json")
    assert done.returncode == 0, done.stderr
    [line] = lines(done.stdout)
    file = json.loads(line)
    assert (file["path"], file["status"]) == (str(path), "PROCESSED")
    assert (file["size"], file["sha256"]) == (12 * MIB + 123, sha256(path))
    assert sorted(part_puts(s3_log, file["key"])) == [1, 2, 3]

    copy = tmp_path / "copy.pdf"
    got = cli.run("get", file["id"], "-o", str(copy))
    assert got.returncode == 0, got.stderr
    assert copy.read_bytes() == path.read_bytes()
    assert got.stdout.startswith(f"saved {copy} 12.0 MiB sha256={file['sha256']}")


def test_a_file_the_server_rejects_is_exit_1_with_the_reason(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("this is plain text, not a PDF\n")
    done = cli.run("upload", str(path), "--wait")
    assert done.returncode == 1
    assert "status=REJECTED" in lines(done.stdout)[-1]
    assert f"filepipe: {path}: REJECTED: content is text/plain, application/pdf declared" in (
        done.stderr
    )


def test_running_again_after_an_upload_uploads_nothing(cli: Cli, tmp_path: Path) -> None:
    path = pdf(tmp_path / "once.pdf", 5000, seed=uuid.uuid4().hex)
    first = cli.run("upload", str(path), "--wait")
    again = cli.run("upload", str(path))
    assert (first.returncode, again.returncode) == (0, 0)
    file_id = re.findall(ID, first.stdout)[0]
    assert lines(again.stdout) == [
        f"already uploaded once.pdf 4.9 KiB id={file_id} status=PROCESSED"
    ]


def test_several_files_one_json_object_each(cli: Cli, tmp_path: Path) -> None:
    paths = [pdf(tmp_path / f"many-{n}.pdf", 1000 + n, seed=uuid.uuid4().hex) for n in range(3)]
    done = cli.run("upload", *map(str, paths), "--json", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    files = [json.loads(line) for line in lines(done.stdout)]
    assert [f["path"] for f in files] == list(map(str, paths))
    assert [f["declared"]["sha256"] for f in files] == [sha256(p) for p in paths]
    assert len({f["id"] for f in files}) == 3
