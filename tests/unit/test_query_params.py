from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from werkzeug.datastructures import MultiDict

from filepipe.errors import BadRequest
from filepipe.files.model import Status
from filepipe.files.store import FileFilters
from filepipe.query.params import DEFAULT_LIMIT, parse_list_query

SHA = "ab" * 32


def parse(*pairs: tuple[str, str]) -> object:
    return parse_list_query(MultiDict(pairs))


def test_no_parameters_mean_no_filters_and_the_default_limit() -> None:
    query = parse_list_query(MultiDict())
    assert (query.filters, query.limit, query.cursor) == (FileFilters(), DEFAULT_LIMIT, None)


def test_every_filter_is_parsed_and_normalised() -> None:
    query = parse_list_query(
        MultiDict(
            [
                ("status", "processed"),
                ("content_type", "Text/CSV"),
                ("filename", "report 2026.pdf"),
                ("sha256", SHA.upper()),
                ("created_after", "2026-01-01T00:00:00Z"),
                ("created_before", "2026-02-01T10:00:00 02:00"),  # '+' sent unencoded
                ("limit", "200"),
                ("cursor", "abc.def"),
            ]
        )
    )
    assert query.filters == FileFilters(
        status=Status.PROCESSED,
        content_type="text/csv",
        filename="report 2026.pdf",
        sha256=SHA,
        created_after=datetime(2026, 1, 1, tzinfo=UTC),
        created_before=datetime(2026, 2, 1, 10, tzinfo=timezone(timedelta(hours=2))),
    )
    assert (query.limit, query.cursor) == (200, "abc.def")


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("status", "DONE")], "status"),
        ([("content_type", "pdf")], "content_type"),
        ([("content_type", "text/csv; charset=utf-8")], "content_type"),
        ([("filename", "x" * 256)], "filename"),
        ([("filename", "a\x00b")], "filename"),
        ([("sha256", "ab" * 31)], "sha256"),
        ([("sha256", "zz" * 32)], "sha256"),
        ([("created_after", "yesterday")], "created_after"),
        ([("created_after", "2026-01-01T00:00:00")], "created_after"),  # no offset
        ([("created_before", "2026-13-01T00:00:00Z")], "created_before"),
        (
            [("created_after", "2026-02-01T00:00:00Z"), ("created_before", "2026-01-01T00:00:00Z")],
            "created_after",
        ),
        ([("limit", "0")], "limit"),
        ([("limit", "201")], "limit"),
        ([("limit", "-1")], "limit"),
        ([("limit", "ten")], "limit"),
        ([("limit", "1e2")], "limit"),
        ([("limit", "99999999999999999999")], "limit"),
        ([("filename", "a\ud800b")], "filename"),
    ],
)
def test_each_bad_parameter_is_a_400_naming_it(pairs: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_list_query(MultiDict(pairs))
    assert [e["field"] for e in caught.value.extensions["errors"]] == [field]


def test_every_fault_is_listed_at_once() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_list_query(MultiDict([("status", "x"), ("limit", "0"), ("sha256", "y")]))
    assert sorted(e["field"] for e in caught.value.extensions["errors"]) == [
        "limit",
        "sha256",
        "status",
    ]


def test_filters_have_a_stable_canonical_form() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    assert FileFilters(status=Status.PENDING, created_after=after).canonical() == (
        FileFilters(created_after=after, status=Status.PENDING).canonical()
    )
    assert FileFilters(status=Status.PENDING).canonical() != FileFilters().canonical()
