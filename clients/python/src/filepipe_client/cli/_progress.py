"""Progress bars on a terminal (rich: one per file and a total, with rate and ETA)."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def bars(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


class UploadBars:
    """A bar per file and one for all ``total`` bytes (a ``filepipe_client.Progress``)."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.total = progress.add_task("total", total=total)
        self.tasks: dict[Path, TaskID] = {}
        self.lock = threading.Lock()

    def start(self, path: Path, total: int) -> None:
        with self.lock:
            if path not in self.tasks:
                self.tasks[path] = self.progress.add_task(path.name, total=total)

    def advance(self, path: Path, amount: int) -> None:
        self.progress.advance(self.tasks[path], amount)
        self.progress.advance(self.total, amount)

    def skip(self, amount: int) -> None:
        """Bytes counted done without being sent (a file uploaded before)."""
        self.progress.advance(self.total, amount)
