from __future__ import annotations

from typing import Any

import pytest

from filepipe import mediatypes
from filepipe.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from filepipe.upload.request import parse_upload_request, validate_idempotency_key

ALLOWED = ("application/pdf", "image/*", "text/plain")


def parse(**body: Any) -> Any:
    base = {"filename": "a.pdf", "content_type": "application/pdf", "size": 10}
    base.update(body)
    return parse_upload_request(
        {k: v for k, v in base.items() if v is not None}, max_size=100, allowed_types=ALLOWED
    )


def test_valid_request_is_normalised() -> None:
    request = parse(content_type="Text/Plain; charset=utf-8", sha256="AB" * 32, metadata={"a": "b"})
    assert request.content_type == "text/plain; charset=utf-8"
    assert request.sha256 == "ab" * 32
    assert request.metadata == {"a": "b"}


def test_every_invalid_field_is_listed() -> None:
    with pytest.raises(BadRequest) as caught:
        parse(filename="a/b", size=0, sha256="x", extra=1)
    fields = [error["field"] for error in caught.value.extensions["errors"]]
    assert fields == ["extra", "filename", "size", "sha256"]


def test_limits_map_to_413_and_415() -> None:
    with pytest.raises(PayloadTooLarge):
        parse(size=101)
    with pytest.raises(UnsupportedMediaType):
        parse(content_type="application/zip")


def test_wildcards_in_the_allow_list() -> None:
    assert mediatypes.allowed("image/webp", ALLOWED)
    assert not mediatypes.allowed("video/mp4", ALLOWED)
    assert mediatypes.allowed("video/mp4", ("*/*",))


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain; charset=utf\x00-8",
        "text/plain; charset=a b",
        "text/plain;",
        "text/plain; charset",
        "text /plain",
        'text/plain; name="unterminated',
        "x" * 250 + "/plain",
    ],
)
def test_malformed_media_types_are_400(content_type: str) -> None:
    with pytest.raises(BadRequest):
        parse(content_type=content_type)


def test_media_type_parameters_may_be_quoted_strings() -> None:
    assert parse(content_type='text/plain; charset="utf-8"').content_type == (
        'text/plain; charset="utf-8"'
    )


def test_unicode_filenames_are_fine_but_invisible_controls_are_not() -> None:
    assert parse(filename="résumé 2026 (final).pdf").filename == "résumé 2026 (final).pdf"
    with pytest.raises(BadRequest):
        parse(filename="a\u200bb.pdf")
    with pytest.raises(BadRequest):
        parse(filename="é" * 128)


def test_fingerprint_tells_bodies_apart() -> None:
    assert parse().fingerprint() == parse().fingerprint()
    assert parse().fingerprint() != parse(size=11).fingerprint()


@pytest.mark.parametrize("key", ["", "a b", "x" * 256, "ключ"])
def test_bad_idempotency_keys(key: str) -> None:
    with pytest.raises(BadRequest):
        validate_idempotency_key(key)


def test_good_idempotency_key() -> None:
    assert validate_idempotency_key("order-42:retry") == "order-42:retry"
    assert validate_idempotency_key(None) is None


@pytest.mark.parametrize(
    "filename",
    [
        "a\u2215b.pdf",  # division slash
        "a\u2044b.pdf",  # fraction slash
        "a\uff0fb.pdf",  # fullwidth solidus: NFKC makes it '/'
        "a\ufe68b.pdf",  # small reverse solidus: NFKC makes it '\'
        "a\u29f8b.pdf",  # big solidus
        "a\u0338b.pdf",  # combining long solidus overlay
        "\uff0e",  # fullwidth full stop: NFKC makes it '.'
        "a\u00adb.pdf",  # soft hyphen (Cf)
    ],
)
def test_look_alike_separators_and_format_characters_are_refused(filename: str) -> None:
    with pytest.raises(BadRequest):
        parse(filename=filename)


def test_filenames_are_stored_nfkc_normalised() -> None:
    assert parse(filename="ﬁle\u00a0№1.pdf").filename == "file No1.pdf"
    assert parse(filename="e\u0301te.pdf").filename == "\u00e9te.pdf"
