"""Run the ``filepipe`` operator CLI of this source tree as a real process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

from tests.support.processes import ROOT


def filepipe_cli(
    env: Mapping[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m filepipe.cli ARGS`` with only ``env`` (plus a PATH, and this tree's
    ``shared/`` first on the path, whatever package the interpreter has installed)."""
    return subprocess.run(
        [sys.executable, "-m", "filepipe.cli", *args],
        cwd=ROOT,
        env={**env, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "shared")},
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    """What the command printed last on stdout (where new keys go)."""
    return result.stdout.strip().splitlines()[-1]
