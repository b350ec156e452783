"""The pure rules of multipart uploads (``filepipe.upload.multipart``) and the fingerprint and
verification details they touch."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from filepipe.errors import BadRequest, PayloadTooLarge
from filepipe.files.model import Status
from filepipe.multipart_storage import StoredPart
from filepipe.process.bucket_events import ObjectCreated
from filepipe.process.verify import changed_since_verified
from filepipe.upload.multipart import (
    Completion,
    PartPlan,
    check_part_numbers,
    completed_size,
    completion_errors,
    parse_completion,
    parse_part_request,
    plan,
)
from filepipe.upload.request import parse_upload_request
from tests.support.rows import file_row

MIB = 1024**2
GIB = 1024**3


def planned(size: int, **options: Any) -> PartPlan | None:
    given = {"multipart": None, "part_size": None, **options}
    return plan(size, threshold=64 * MIB, default_part_size=16 * MIB, **given)


def test_the_threshold_picks_multipart_unless_the_request_says() -> None:
    assert planned(64 * MIB - 1) is None
    assert planned(64 * MIB) == PartPlan(64 * MIB, 16 * MIB)
    assert planned(10, multipart=True) == PartPlan(10, 16 * MIB)
    assert planned(GIB, multipart=False) is None


def test_the_default_part_size_is_raised_to_keep_10000_parts_in_whole_mib() -> None:
    largest = planned(5 * 1024**4)
    assert largest is not None
    assert largest.part_size == 525 * MIB and largest.part_count == 9987
    assert planned(156 * GIB) == PartPlan(156 * GIB, 16 * MIB)  # 9984 parts: not raised
    raised = planned(157 * GIB)
    assert raised is not None and raised.part_size == 17 * MIB and raised.part_count <= 10_000


def test_an_explicit_part_size_giving_more_than_10000_parts_is_a_400() -> None:
    assert planned(10_000 * 5 * MIB, part_size=5 * MIB) == PartPlan(50_000 * MIB, 5 * MIB)
    with pytest.raises(BadRequest) as caught:
        planned(10_000 * 5 * MIB + 1, part_size=5 * MIB)
    assert caught.value.extensions["errors"][0]["field"] == "part_size"


def test_a_single_put_takes_at_most_5_gib_and_no_part_size() -> None:
    assert planned(5 * GIB, multipart=False) is None
    with pytest.raises(PayloadTooLarge) as too_large:
        planned(5 * GIB + 1, multipart=False)
    assert too_large.value.extensions["max_size"] == 5 * GIB
    with pytest.raises(BadRequest):
        planned(10, part_size=5 * MIB)  # below the threshold: a single PUT


def test_part_lengths_are_the_part_size_but_the_last() -> None:
    parts = PartPlan(11 * MIB, 5 * MIB)
    assert parts.part_count == 3
    assert [parts.part_length(n) for n in (1, 2, 3)] == [5 * MIB, 5 * MIB, MIB]
    assert PartPlan(10 * MIB, 5 * MIB).part_length(2) == 5 * MIB


def test_the_new_fields_count_in_the_fingerprint_only_when_given() -> None:
    def fingerprint(**fields: Any) -> str:
        body = {"filename": "a.pdf", "content_type": "application/pdf", "size": 10, **fields}
        request = parse_upload_request(body, max_size=100, allowed_types=("*/*",))
        return request.fingerprint()

    old = json.dumps(["a.pdf", "application/pdf", 10, None, {}], separators=(",", ":"))
    assert fingerprint() == hashlib.sha256(old.encode()).hexdigest()  # as recorded before
    assert fingerprint() != fingerprint(multipart=True)
    assert fingerprint(multipart=True) != fingerprint(multipart=True, part_size=5 * MIB)
    assert fingerprint(part_size=5 * MIB + 0.0) == fingerprint(part_size=5 * MIB)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"part_numbers": []},
        {"part_numbers": [0]},
        {"part_numbers": [10_001]},
        {"part_numbers": [1, 1]},
        {"part_numbers": [1.5]},
        {"part_numbers": [True]},
        {"part_numbers": list(range(1, 1002))},
        {"part_numbers": [1], "sha256": {"2": "ab" * 32}},
        {"part_numbers": [1], "sha256": {"1": "ab"}},
        {"part_numbers": [1], "sha256": ["ab" * 32]},
        {"part_numbers": [1], "colour": "red"},
    ],
)
def test_invalid_part_requests_are_400s(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_part_request(body)
    assert caught.value.extensions["errors"]


def test_a_part_request_takes_integral_numbers_and_lower_cases_digests() -> None:
    request = parse_part_request({"part_numbers": [3, 1.0], "sha256": {"3": "AB" * 32}})
    assert request.numbers == (3, 1)
    assert request.sha256 == {3: "ab" * 32}
    check_part_numbers(request, 3)
    with pytest.raises(BadRequest, match="invalid") as caught:
        check_part_numbers(request, 2)
    assert "not 3" in caught.value.extensions["errors"][0]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"parts": []},
        {"parts": [{"number": 1}]},
        {"parts": [{"number": 0, "etag": "x"}]},
        {"parts": [{"number": 1, "etag": ""}]},
        {"parts": [{"number": 1, "etag": "x", "size": 1}]},
        {"parts": [{"number": 1, "etag": "x"}], "sha256": "xyz"},
        {"parts": [{"number": 1, "etag": "x"}], "extra": 1},
    ],
)
def test_invalid_completions_are_400s(body: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_completion(body)


PLAN = PartPlan(11 * MIB, 5 * MIB)
STORED = [
    StoredPart(1, '"e1"', 5 * MIB),
    StoredPart(2, '"e2"', 5 * MIB),
    StoredPart(3, '"e3"', MIB),
]


def errors_of(parts: list[tuple[int, str]], stored: list[StoredPart] = STORED) -> list[str]:
    return [e["field"] for e in completion_errors(Completion(tuple(parts), None), stored, PLAN)]


def test_a_completion_of_every_part_with_its_etag_is_clean() -> None:
    assert errors_of([(1, '"e1"'), (2, "e2"), (3, '"e3"')]) == []


def test_each_fault_of_a_completion_is_named() -> None:
    assert errors_of([(1, "e1"), (3, "e3")]) == ["parts"]  # 2 missing from the list
    assert errors_of([(2, "e2"), (1, "e1"), (3, "e3")]) == ["parts"]  # out of order
    assert errors_of([(1, "e1"), (2, "e2"), (3, "e3"), (4, "e4")]) == ["parts"]
    assert errors_of([(1, "e1"), (2, "x"), (3, "e3")]) == ["parts.2.etag"]
    assert errors_of([(1, "e1"), (2, "e2"), (3, "e3")], STORED[:2]) == ["parts", "size"]
    short = [*STORED[:2], StoredPart(3, '"e3"', 10)]
    assert errors_of([(1, "e1"), (2, "e2"), (3, "e3")], short) == ["parts.3.size", "size"]


def faults_without_plan(parts: list[tuple[int, str]], stored: list[StoredPart]) -> list[str]:
    return [e["field"] for e in completion_errors(Completion(tuple(parts), None), stored, None)]


def test_parts_the_client_sized_are_contiguous_from_1_and_5_mib_but_the_last() -> None:
    listed = [(1, "e1"), (2, "e2"), (3, "e3")]
    assert faults_without_plan(listed, STORED) == []
    assert faults_without_plan(listed[:2], STORED) == []  # a stored part left out is no fault
    assert faults_without_plan([(1, "e1"), (3, "e3")], STORED) == ["parts"]
    assert faults_without_plan([(2, "e2"), (3, "e3")], STORED) == ["parts"]
    assert faults_without_plan(listed, STORED[:2]) == ["parts"]  # 3 not uploaded
    small_first = [StoredPart(1, '"e1"', MIB), *STORED[1:]]
    assert faults_without_plan(listed, small_first) == ["parts.1.size"]
    assert completed_size(STORED, 3) == 11 * MIB
    assert completed_size(STORED, 2) == 10 * MIB


def test_a_multipart_etag_is_not_a_change_since_verification() -> None:
    etag = "0f343b0931126a20f133d67c2b018a3b-3"
    file = file_row(status=Status.PROCESSED, size_bytes=11, etag=etag)
    again = ObjectCreated("s3:ObjectCreated:CompleteMultipartUpload", "b", "k", 11, f'"{etag}"')
    assert not changed_since_verified(file, again)
