"""Durable writes on a local file system: what the local S3's queue and object store rely on.

A file is durable once its bytes are fsynced and the rename (or unlink) that made it visible is
fsynced in its directory (``rename(2)`` is atomic; its persistence needs the directory's fsync).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: Path, content: bytes) -> None:
    """``path`` holds ``content`` entirely, or keeps what it held: temp file, fsync, rename."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with temporary.open("wb") as file:
        file.write(content)
        sync(file)
    temporary.rename(path)
    fsync_directory(path.parent)


def sync(file: BinaryIO) -> None:
    """Flush ``file`` to the disk."""
    file.flush()
    os.fsync(file.fileno())


def fsync_directory(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
