"""The part plan, the identity behind the Idempotency-Key, and content type guessing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from filepipe_client import PartSpan, guess_content_type, identity_key, plan_parts

MIB = 1024 * 1024


def test_parts_cover_the_file_and_only_the_last_is_shorter() -> None:
    plan = plan_parts(12 * MIB + 1, 5 * MIB)
    assert plan == [
        PartSpan(1, 0, 5 * MIB),
        PartSpan(2, 5 * MIB, 5 * MIB),
        PartSpan(3, 10 * MIB, 2 * MIB + 1),
    ]


def test_a_size_that_is_a_multiple_of_the_part_size_has_no_empty_last_part() -> None:
    plan = plan_parts(10 * MIB, 5 * MIB)
    assert [span.length for span in plan] == [5 * MIB, 5 * MIB]


def test_a_file_smaller_than_a_part_is_one_part() -> None:
    assert plan_parts(3, 5 * MIB) == [PartSpan(1, 0, 3)]


@pytest.mark.parametrize(("size", "part_size"), [(0, 5), (5, 0)])
def test_empty_sizes_are_refused(size: int, part_size: int) -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        plan_parts(size, part_size)


def _key(path: Path, **changes: object) -> str:
    given: dict[str, object] = {
        "content_type": "application/pdf",
        "metadata": {"a": "1", "b": "2"},
        "part_size": None,
        **changes,
    }
    return identity_key(
        path,
        path.stat(),
        str(given["content_type"]),
        dict(given["metadata"]),  # type: ignore[call-overload]
        given["part_size"],  # type: ignore[arg-type]
    )


def test_the_identity_key_is_stable_for_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x" * 10)
    key = _key(path)
    assert key == _key(path)
    assert key == _key(path, metadata={"b": "2", "a": "1"})  # order does not matter
    assert key.startswith("fpc-") and 1 <= len(key) <= 255 and " " not in key


@pytest.mark.parametrize(
    "change",
    [
        {"content_type": "text/plain"},
        {"metadata": {"a": "1"}},
        {"part_size": 5 * MIB},
    ],
)
def test_the_identity_key_changes_with_what_is_declared(
    tmp_path: Path, change: dict[str, object]
) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x" * 10)
    assert _key(path, **change) != _key(path)


def test_the_identity_key_changes_when_the_file_does(tmp_path: Path) -> None:
    path = tmp_path / "a.pdf"
    path.write_bytes(b"x" * 10)
    before = _key(path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    touched = _key(path)
    path.write_bytes(b"x" * 11)
    assert len({before, touched, _key(path)}) == 3
    other = tmp_path / "b.pdf"
    other.write_bytes(b"x" * 11)
    os.utime(other, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    assert _key(other) != _key(path)  # another path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "application/pdf"),
        ("DATA.CSV", "text/csv"),
        ("photo.jpeg", "image/jpeg"),
        ("no-extension", "application/octet-stream"),
        ("odd.zzz-unknown", "application/octet-stream"),
    ],
)
def test_the_content_type_is_guessed_from_the_name(name: str, expected: str) -> None:
    assert guess_content_type(Path(name)) == expected
