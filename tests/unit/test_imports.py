"""Every module of the core imports on its own, first: an import cycle that a usual order hides
(the tests import ``filepipe.web`` early) breaks a process that starts from another module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"

IMPORT_EACH_FIRST = """
import importlib, pkgutil, sys
import filepipe
names = [m.name for m in pkgutil.walk_packages(filepipe.__path__, "filepipe.")]
names = [name for name in names if not name.endswith("__main__")]  # those run a program
failed = []
for name in names:
    for loaded in [k for k in sys.modules if k == "filepipe" or k.startswith("filepipe.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except ImportError as exc:
        failed.append(f"{name}: {exc}")
print(len(names))
print("\\n".join(failed))
"""


def test_every_module_imports_first() -> None:
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_FIRST],
        capture_output=True,
        text=True,
        check=True,
        cwd=SHARED,
        timeout=120,
    )
    count, *failed = run.stdout.strip().splitlines()
    assert int(count) > 50
    assert failed == []
