from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from filepipe.files.model import Status
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.inspection import inspect, prefetch, sniff
from filepipe.process.verify import changed_since_verified, judge
from tests.support.rows import file_row

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"1" * 64


def chunked(data: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_inspect_hashes_and_measures_across_chunks() -> None:
    data = bytes(range(256)) * 100
    result = inspect(chunked(data), limit=len(data))
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data) and not result.truncated
    assert result.head == data[:8192]


def test_inspect_stops_reading_past_the_limit() -> None:
    consumed = []

    def source() -> Iterator[bytes]:
        for chunk in chunked(b"x" * 1000, 100):
            consumed.append(chunk)
            yield chunk

    result = inspect(source(), limit=250)
    assert result.truncated and result.sha256 is None
    assert result.size == 300 and len(consumed) == 3


@pytest.mark.parametrize(
    ("head", "declared", "detected"),
    [
        (PNG, "image/png", "image/png"),
        (PNG, "application/pdf", "image/png"),
        (PDF, "application/pdf", "application/pdf"),
        (b"a,b\n1,2\n", "text/csv", "text/csv"),
        (b'{"a": 1}', "application/json", "application/json"),
        (b"plain words", "application/pdf", "text/plain"),
        (b"\x00\x01\x02\xff\xfe", "text/plain", "application/octet-stream"),
        ("caf\u00e9".encode()[:-1], "text/plain", "text/plain"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpg", "image/jpeg"),
    ],
)
def test_sniff(head: bytes, declared: str, detected: str) -> None:
    assert sniff(head, declared) == detected


def test_prefetch_yields_everything_in_order_and_re_raises() -> None:
    data = bytes(range(256)) * 40
    chunks = [bytes(c) for c in prefetch(io.BytesIO(data).readinto, chunk_size=1000, depth=2)]
    assert b"".join(chunks) == data and len(chunks) == 11

    def broken(buffer: memoryview) -> int:
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        list(prefetch(broken, chunk_size=10))


def test_prefetch_stops_its_reader_when_closed_early() -> None:
    def endless(buffer: memoryview) -> int:
        buffer[:] = b"x" * len(buffer)
        return len(buffer)

    before = threading.active_count()
    stream = prefetch(endless, chunk_size=10, depth=2)
    assert bytes(next(stream)) == b"x" * 10
    stream.close()
    assert threading.active_count() == before


def verdict_for(data: bytes, **declared: Any) -> tuple[str, str | None]:
    row = file_row(
        **{
            "declared_size": len(PDF),
            "declared_sha256": hashlib.sha256(PDF).hexdigest(),
            **declared,
        }
    )
    limit = 10_000 if row.declared_size is None else min(row.declared_size, 10_000)
    verdict = judge(row, inspect(chunked(data), limit=limit), max_bytes=10_000)
    return verdict.status, verdict.reason


def test_judge_checks_an_unknown_size_against_the_limit_alone() -> None:
    assert verdict_for(PDF, declared_size=None) == (Status.PROCESSED, None)
    over = PDF + b"\0" * 10_001
    assert verdict_for(over, declared_size=None, declared_sha256=None) == (
        Status.REJECTED,
        "object is larger than the limit of 10000 bytes",
    )


def test_judge_accepts_what_was_declared() -> None:
    assert verdict_for(PDF) == (Status.PROCESSED, None)
    assert verdict_for(PDF, declared_sha256=None) == (Status.PROCESSED, None)


def test_judge_rejects_with_the_reason() -> None:
    assert verdict_for(PDF + b"x")[1] == f"object is larger than the declared {len(PDF)} bytes"
    assert verdict_for(PDF[:-1])[1] == f"object has {len(PDF) - 1} bytes, {len(PDF)} declared"
    status, reason = verdict_for(PDF[:-1] + b"2")
    assert (
        status == Status.REJECTED and reason is not None and "differs from the declared" in reason
    )
    assert verdict_for(PNG, declared_size=len(PNG), declared_sha256=None)[1] == (
        "content is image/png, application/pdf declared"
    )
    big = b"%PDF" + b"0" * 10_100
    assert verdict_for(big, declared_size=20_000, declared_sha256=None)[1] == (
        "object is larger than the limit of 10000 bytes"
    )


@pytest.mark.parametrize(
    ("head", "declared", "detected"),
    [
        (b"\xff\xff\xff\xff" + bytes(range(256)) * 4, "text/plain", "application/octet-stream"),
        (b"PK\x03\x04" + b"\x14\x00" * 20, "application/zip", "application/zip"),
        (b"%PDF-1.7\n% ascii only\n", "text/plain", "text/plain"),
        (PNG, "text/plain", "image/png"),
    ],
)
def test_sniff_takes_the_best_match_and_decodes_text(
    head: bytes, declared: str, detected: str
) -> None:
    assert sniff(head, declared) == detected


def test_text_is_checked_over_the_whole_object_across_chunk_boundaries() -> None:
    text = ("é" * 5000).encode()  # 10,000 bytes: 100-byte chunks split characters
    whole = inspect((memoryview(c) for c in chunked(text, 99)), limit=len(text), text=True)
    assert whole.text is True
    late_nul = text + b"\x00"
    assert inspect(chunked(late_nul, 64), limit=len(late_nul), text=True).text is False
    late_binary = text + b"\xff"
    checked = inspect(chunked(late_binary, 64), limit=len(late_binary), text=True)
    assert checked.text is False and sniff(checked.head, "text/plain", text=checked.text) == (
        "application/octet-stream"
    ), "the head alone looks like text; the whole object does not"
    assert inspect(chunked(text, 64), limit=len(text)).text is None, "not asked: not checked"


def test_a_notification_of_other_bytes_is_a_change_since_verification() -> None:
    file = file_row(status=Status.PROCESSED, size_bytes=10, etag="abc")
    created = "s3:ObjectCreated:Put"
    assert not changed_since_verified(file, ObjectCreated(created, "b", "k", 10, '"abc"'))
    assert not changed_since_verified(file, ObjectCreated(created, "b", "k", None, None))
    assert changed_since_verified(file, ObjectCreated(created, "b", "k", 11, "abc"))
    assert changed_since_verified(file, ObjectCreated(created, "b", "k", 10, "abd"))
