"""On a terminal ``upload`` draws progress bars; with its output redirected, plain lines."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

from tests.cli.conftest import MIB, PART, Cli, lines, no_escapes, pdf


def _on_a_terminal(cli: Cli, *args: str) -> tuple[int, str]:
    """Run the command with a pseudo-terminal as stdin, stdout and stderr; its exit code and
    everything it wrote."""
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        cli.command(*args),
        env={**cli.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"},
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    output = bytearray()
    try:
        while chunk := os.read(primary, 65536):
            output += chunk
    except OSError:  # EIO: the terminal's other side is closed, the command is done
        pass
    finally:
        os.close(primary)
    return proc.wait(60), output.decode(errors="replace")


def test_on_a_terminal_upload_draws_progress_bars(cli: Cli, tmp_path: Path) -> None:
    path = pdf(tmp_path / "tty.pdf", 11 * MIB, seed=uuid.uuid4().hex)
    code, output = _on_a_terminal(cli, "upload", str(path), "--part-size", PART)
    assert code == 0, output
    assert "\x1b[" in output  # drawn, with cursor movement and colours
    assert "━" in output  # rich's bar
    assert "100%" in output
    assert re.search(r"[0-9.]+ ?[kKMG]?i?B/s", output)  # the rate
    assert "total" in output and "tty.pdf" in output
    assert "uploaded tty.pdf 11.0 MiB id=" in output


def test_redirected_upload_prints_plain_lines(cli: Cli, tmp_path: Path) -> None:
    paths = [pdf(tmp_path / f"pipe-{n}.pdf", 2048, seed=uuid.uuid4().hex) for n in range(2)]
    done = cli.run("upload", *map(str, paths))
    assert done.returncode == 0, done.stderr
    assert no_escapes([done.stdout, done.stderr])
    assert all(
        re.fullmatch(rf"uploaded pipe-{n}\.pdf 2\.0 KiB id=[0-9a-f-]{{36}} status=PENDING", line)
        for n, line in enumerate(lines(done.stdout))
    )
    assert len(lines(done.stdout)) == 2
