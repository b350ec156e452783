"""The package layout holds: no function package imports another, the core and the file model
import no function package, and each function's entry point stays a thin shell over its own."""

from __future__ import annotations

import ast
from pathlib import Path

import filepipe

PACKAGE = Path(filepipe.__file__).parent
ROOT = PACKAGE.parents[1]
FUNCTION_PACKAGES = ("upload", "process", "query", "notify")
ENTRY_POINTS = {"presign": "upload", "process": "process", "query": "query", "notify": "notify"}


def imported(path: Path) -> set[str]:
    """The ``filepipe`` modules ``path`` imports (absolute imports only; we use no others)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] == "filepipe"}


def owner(module: str) -> str | None:
    """The function package a ``filepipe.x.y`` module belongs to, if any."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FUNCTION_PACKAGES else None


def test_no_function_package_imports_another_and_the_core_imports_none() -> None:
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("filepipe", *path.relative_to(PACKAGE).with_suffix("").parts))
        mine = owner(module)
        for name in imported(path):
            theirs = owner(name)
            if theirs is not None and theirs != mine:
                wrong.append(f"{module} imports {name}")
    assert wrong == []


def test_each_entry_point_is_a_thin_shell_over_its_own_package() -> None:
    for function, package in ENTRY_POINTS.items():
        main = ROOT / "functions" / function / "main.py"
        owners = {owner(name) for name in imported(main)} - {None}
        assert owners == {package}, (function, owners)
        assert len(main.read_text().splitlines()) <= 30, f"{main} is more than a screen"


def test_every_package_says_what_it_owns() -> None:
    for init in PACKAGE.rglob("__init__.py"):
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring and len(docstring) > 40, f"{init} has no docstring saying what it owns"
