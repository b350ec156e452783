"""How the ``filepipe`` command shows files: sizes, one-line summaries, tables, JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from filepipe_client._models import File

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(count: int | None) -> str:
    """``1.2 MiB``; ``-`` for no size."""
    if count is None:
        return "-"
    value = float(count)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def summary(verb: str, file: File) -> str:
    """``uploaded report.pdf 1.2 MiB id=… status=PENDING`` (and the error, if any)."""
    line = f"{verb} {file.filename} {size(file.size or file.declared_size)} id={file.id}"
    line += f" status={file.status}"
    return line + (f" error={file.error}" if file.error else "")


def json_line(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def files_table(files: Iterable[File]) -> Table:
    table = Table("id", "name", "status", "size", "created", box=None, pad_edge=False)
    for file in files:
        table.add_row(
            file.id,
            file.filename,
            str(file.status),
            size(file.size if file.size is not None else file.declared_size),
            file.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        )
    return table


def file_details(file: File) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    rows = [
        ("id", file.id),
        ("name", file.filename),
        ("status", str(file.status)),
        ("error", file.error or "-"),
        ("size", size(file.size)),
        ("content type", file.content_type or "-"),
        ("sha256", file.sha256 or "-"),
        ("declared", f"{file.declared_content_type}, {size(file.declared_size)}"),
        ("metadata", json.dumps(file.metadata, ensure_ascii=False) if file.metadata else "-"),
        ("created", file.created_at.isoformat()),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def plain_console() -> Console:
    """stdout as rich sees it: styled on a terminal, plain text otherwise."""
    return Console(highlight=False, soft_wrap=True)
