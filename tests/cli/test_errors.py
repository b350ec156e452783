"""Each kind of failure: a one-line message on stderr and its own exit code."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

from tests.cli.conftest import MAX_UPLOAD, Cli, lines, pdf


def test_a_refused_key_is_exit_3(cli: Cli) -> None:
    done = dataclasses.replace(cli, key="fpk_" + "x" * 43).run("ls")
    assert done.returncode == 3
    assert lines(done.stderr) == [lines(done.stderr)[0]]
    assert done.stderr.startswith("filepipe: the API key was refused (401")


def test_an_unreachable_server_is_exit_4_naming_the_url(cli: Cli, closed_port_url: str) -> None:
    url = closed_port_url.rstrip("/")
    done = dataclasses.replace(cli, url=url).run("status", str(uuid.uuid4()))
    assert done.returncode == 4
    assert done.stderr.startswith(f"filepipe: cannot reach {url}:")
    assert len(lines(done.stderr)) == 1


def test_no_url_is_a_usage_error(cli: Cli) -> None:
    done = dataclasses.replace(cli, url="").run("ls")
    assert done.returncode == 2
    assert "no server URL: set FILEPIPE_URL or pass --url" in done.stderr


def test_a_file_over_the_size_limit_is_exit_5_with_the_servers_detail(
    cli: Cli, tmp_path: Path
) -> None:
    big = tmp_path / "huge.pdf"
    with big.open("wb") as sink:
        sink.truncate(MAX_UPLOAD + 1)  # sparse: nothing is read before the server refuses
    done = cli.run("upload", str(big))
    assert done.returncode == 5
    assert "refused (413): " in done.stderr
    assert str(MAX_UPLOAD) in done.stderr or "limit" in done.stderr


def test_a_type_that_is_not_allowed_is_exit_5_with_the_servers_detail(
    cli: Cli, tmp_path: Path
) -> None:
    path = pdf(tmp_path / "setup.exe", 1000)
    done = cli.run("upload", str(path), "--content-type", "application/x-msdownload")
    assert done.returncode == 5
    assert "refused (415): " in done.stderr
    assert "application/x-msdownload" in done.stderr


def test_an_unknown_file_is_exit_5(cli: Cli) -> None:
    done = cli.run("status", str(uuid.uuid4()))
    assert done.returncode == 5
    assert done.stderr.startswith("filepipe: refused (404): ")


def test_a_missing_path_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    done = cli.run("upload", os.fspath(tmp_path / "nothing.pdf"))
    assert done.returncode == 2
    assert "no such file" in done.stderr


def test_help_shows_the_exit_codes(cli: Cli) -> None:
    for args in (["--help"], ["upload", "--help"], ["watch", "--help"]):
        done = cli.run(*args)
        assert done.returncode == 0
        assert "exit codes:" in done.stdout
        assert "3  authentication" in done.stdout
