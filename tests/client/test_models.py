"""Files as the API shows them become ``File``s, whatever the way they were uploaded."""

from __future__ import annotations

from typing import Any

from filepipe_client._models import File, Status
from filepipe_client.cli._output import file_details, files_table, summary


def shown(declared_size: int | None, size: int | None) -> dict[str, Any]:
    return {
        "id": "0b7e6f1c-95d5-4c5a-9c61-2f3c2f0b9a41",
        "status": "PENDING",
        "filename": "a.pdf",
        "declared": {"content_type": "application/pdf", "size": declared_size, "sha256": None},
        "content_type": None,
        "size": size,
        "sha256": None,
        "error": None,
        "metadata": {},
        "version": 1,
        "created_at": "2026-12-02T14:00:00+00:00",
    }


def test_a_file_of_unknown_size_reads_and_shows() -> None:
    file = File.from_json(shown(None, None))
    assert (file.declared_size, file.status) == (None, Status.PENDING)
    assert summary("uploaded", file).startswith("uploaded a.pdf - id=")
    assert files_table([file]).row_count == 1 and file_details(file).row_count > 0
    assert File.from_json(shown(3, None)).declared_size == 3
