"""The local S3 server's body, POST-policy and addressing checks, without a server."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from local import s3_body
from local.s3_errors import S3Error, error_document
from local.s3_guard import Target, target_of
from local.s3_post_policy import Form, check, parse_policy, read_form

DATA = b"local S3 body check\n" * 100


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def spool(data: bytes, given: dict[str, str] | None = None, *, length: int | None = None) -> bytes:
    headers = dict(given or {})
    declared = s3_body.Declared(
        length=len(data) if length is None else length,
        md5=s3_body.declared_md5(headers.pop("content-md5", None)),
        checksum=s3_body.declared_checksum(headers),
    )
    with s3_body.spool(io.BytesIO(data), declared) as spooled:
        return spooled.read()


def refusal(
    data: bytes, headers: dict[str, str] | None = None, *, length: int | None = None
) -> tuple[int, str]:
    with pytest.raises(S3Error) as caught:
        spool(data, headers, length=length)
    return caught.value.status, caught.value.code


@pytest.mark.parametrize(
    ("name", "digest"),
    [
        ("x-amz-checksum-sha256", hashlib.sha256(DATA).digest()),
        ("x-amz-checksum-sha1", hashlib.sha1(DATA, usedforsecurity=False).digest()),
        ("x-amz-checksum-crc32", zlib.crc32(DATA).to_bytes(4, "big")),
        ("content-md5", hashlib.md5(DATA, usedforsecurity=False).digest()),
    ],
)
def test_a_body_matching_its_digest_passes_and_another_is_refused(name: str, digest: bytes) -> None:
    assert spool(DATA, {name: b64(digest)}) == DATA
    expected = (400, "BadDigest" if name == "content-md5" else "XAmzContentChecksumMismatch")
    assert refusal(DATA[:-1] + b"?", {name: b64(digest)}) == expected


def test_the_signed_payload_digest_is_checked() -> None:
    good = s3_body.Declared(length=len(DATA), sha256_hex=hashlib.sha256(DATA).hexdigest())
    bad = s3_body.Declared(length=len(DATA), sha256_hex=hashlib.sha256(b"x").hexdigest())

    with s3_body.spool(io.BytesIO(DATA), good) as spooled:
        assert spooled.read() == DATA
    with pytest.raises(S3Error) as caught:
        s3_body.spool(io.BytesIO(DATA), bad)
    assert caught.value.code == "XAmzContentSHA256Mismatch"


def test_malformed_or_unverifiable_checksums_and_short_bodies_are_refused() -> None:
    sha = b64(hashlib.sha256(DATA).digest())
    assert refusal(DATA, {"x-amz-checksum-sha256": "not base64!"}) == (400, "InvalidArgument")
    assert refusal(DATA, {"x-amz-checksum-sha256": b64(b"short")}) == (400, "InvalidArgument")
    both = {"x-amz-checksum-sha256": sha, "x-amz-checksum-crc32": b64(b"1234")}
    assert refusal(DATA, both) == (400, "InvalidArgument")
    assert refusal(DATA, {"x-amz-checksum-crc32c": b64(b"1234")}) == (501, "NotImplemented")
    assert refusal(DATA, {"content-md5": "AAAA"}) == (400, "InvalidDigest")
    assert refusal(DATA, length=len(DATA) + 1) == (400, "IncompleteBody")


POLICY = {
    "expiration": "2100-01-01T00:00:00.000Z",
    "conditions": [
        {"bucket": "uploads"},
        ["starts-with", "$key", "in/"],
        ["eq", "$Content-Type", "text/plain"],
        ["content-length-range", 1, "10"],
    ],
}
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def form(**fields: str) -> Form:
    values = {"bucket": "uploads", "key": "in/a.txt", "content-type": "text/plain", **fields}
    return Form(fields={name: [value] for name, value in values.items()})


def policy_refusal(document: object, checked: Form) -> tuple[int, str, str]:
    with pytest.raises(S3Error) as caught:
        check(parse_policy(json.dumps(document).encode()), checked, NOW)
    return caught.value.status, caught.value.code, caught.value.message


def test_a_form_meeting_every_condition_passes() -> None:
    policy = parse_policy(json.dumps(POLICY).encode())
    check(policy, form(), NOW)
    assert policy.length_range == (1, 10)


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"key": "out/a.txt"}, '["starts-with", "$key", "in/"]'),
        ({"content-type": "text/html"}, '["eq", "$content-type", "text/plain"]'),
        ({"bucket": "other"}, '["eq", "$bucket", "uploads"]'),
        ({"x-amz-meta-a": "b"}, '"x-amz-meta-a" not specified in the policy'),
    ],
)
def test_a_form_outside_the_policy_is_denied_naming_the_condition(
    fields: dict[str, str], detail: str
) -> None:
    status, code, message = policy_refusal(POLICY, form(**fields))
    assert (status, code) == (403, "AccessDenied")
    assert detail in message


def test_an_expired_or_malformed_policy_is_refused() -> None:
    expired = {**POLICY, "expiration": (NOW - timedelta(seconds=1)).isoformat()}
    assert policy_refusal(expired, form())[2].endswith(
        "(Invalid according to Policy: Policy expired)"
    )
    starts_with_bucket = {**POLICY, "conditions": [["starts-with", "$bucket", "up"]]}
    assert policy_refusal(starts_with_bucket, form())[:2] == (403, "AccessDenied")
    for document in (
        b'{"expiration": "2100-01-01T00:00:00Z", "expiration": "2100-01-01T00:00:00Z"}',
        b'{"expiration": "2100-01-01T00:00:00Z", "other": 1}',
        b'{"expiration": "tomorrow", "conditions": []}',
        b'{"expiration": "2100-01-01T00:00:00Z", "conditions": [["in", "$key", "a"]]}',
        b"[]",
    ):
        with pytest.raises(S3Error) as caught:
            parse_policy(document)
        assert (caught.value.status, caught.value.code) == (403, "PostPolicyInvalidKeyName")


def multipart(*parts: tuple[str, str | None, bytes]) -> io.BytesIO:
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            f"--B\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
        )
    return io.BytesIO(b"".join(chunks) + b"--B--\r\n")


def test_the_form_is_read_up_to_the_file_and_the_file_is_measured() -> None:
    body = multipart(("Key", None, b"in/${filename}"), ("file", "dir/a.txt", DATA))

    read = read_form(body, b"B")

    assert read.fields == {"key": ["in/${filename}"]}
    assert (read.filename, read.size) == ("a.txt", len(DATA))


@pytest.mark.parametrize(
    "parts",
    [
        (("file", "a.txt", DATA), ("key", None, b"late")),
        (("key", None, b"k"), ("other", "b.txt", DATA), ("file", "a.txt", DATA)),
    ],
    ids=["field after the file", "a second file"],
)
def test_a_form_moto_could_read_differently_is_refused(
    parts: tuple[tuple[str, str | None, bytes], ...],
) -> None:
    with pytest.raises(S3Error) as caught:
        read_form(multipart(*parts), b"B")
    assert (caught.value.status, caught.value.code) == (400, "MalformedPOSTRequest")


@pytest.mark.parametrize(
    ("host", "path", "target"),
    [
        ("127.0.0.1:9000", "/uploads/a%20b/c", Target("uploads", "a b/c")),
        ("localhost:9000", "/uploads", Target("uploads", "")),
        ("minio:9000", "/uploads/k", Target("uploads", "k")),
        ("[::1]:9000", "/uploads/k", Target("uploads", "k")),
        ("uploads.s3.filepipe.test:9000", "/a%2Bb", Target("uploads", "a+b")),
    ],
)
def test_path_and_virtual_host_addressing_follow_moto(host: str, path: str, target: Target) -> None:
    assert target_of(host, path) == target


def test_the_error_document_is_s3s() -> None:
    error = S3Error(403, "AccessDenied", "Access <Denied>.")
    body = error_document(
        error, resource="/uploads/k", request_id="R1", region="us-east-1", bucket="uploads", key="k"
    )
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
        b"<Message>Access &lt;Denied&gt;.</Message><Key>k</Key><BucketName>uploads</BucketName>"
        b"<Resource>/uploads/k</Resource><Region>us-east-1</Region><RequestId>R1</RequestId>"
        b"<HostId></HostId></Error>"
    )
