"""SigV4 verification (``local.sigv4``, ``local.s3_auth``) against botocore's own signer.

botocore produces the requests (header auth and presigned URLs, as the functions and their
clients send them); the local server's canonicalisation must agree with it byte for byte, accept
what it signs, and refuse every change, with MinIO's error codes.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from filepipe import sigv4
from local.s3_auth import Authenticated, Authenticator, SignedRequest
from local.s3_errors import S3Error
from tests.support.signing import with_query

ACCESS_KEY, SECRET = "filepipe-unit", "filepipe-unit-secret"
REGION = "us-east-1"
ENDPOINT = "http://127.0.0.1:9000"
KEYS = [
    "plain.pdf",
    "tenant a/dir/report 2026+final.pdf",
    "ü/€ x~y.txt",
    "a=b&c;d,e:f@g$h!i*j'k(l)m.txt",
    "percent%20literal%2Fslash",
    "trailing/",
]


def authenticator(offset: float = 0.0) -> Authenticator:
    now = dt.datetime.now(dt.UTC).timestamp() + offset
    return Authenticator({ACCESS_KEY: SECRET}, REGION, clock=lambda: now)


@functools.cache
def s3_client() -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def sent(
    method: str, url: str, headers: dict[str, str] | None = None, *, body: bytes = b""
) -> SignedRequest:
    """The request a client sends for ``url``: with Host and, with a body, Content-Length."""
    parts = urlsplit(url)
    all_headers = {"host": parts.netloc, **{k.lower(): v for k, v in (headers or {}).items()}}
    if body:
        all_headers["content-length"] = str(len(body))
    return SignedRequest(method, parts.path, parts.query, all_headers)


def header_signed(method: str, url: str, body: bytes = b"", **headers: str) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).add_auth(request)
    return request


def as_sent(request: AWSRequest) -> SignedRequest:
    body = request.body if isinstance(request.body, bytes) else b""
    return sent(str(request.method), str(request.url), dict(request.headers.items()), body=body)


def presigned_put(key: str, **params: Any) -> str:
    url: str = s3_client().generate_presigned_url(
        "put_object", Params={"Bucket": "uploads", "Key": key, **params}, ExpiresIn=300
    )
    return url


def refused(request: SignedRequest, auth: Authenticator | None = None) -> S3Error:
    with pytest.raises(S3Error) as caught:
        (auth or authenticator()).authenticate(request)
    return caught.value


@pytest.mark.parametrize("key", KEYS)
def test_canonical_request_is_the_one_botocore_signs(key: str) -> None:
    client = s3_client()
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "uploads", "Key": key}, ExpiresIn=60
    ).split("?")[0]
    url += "?tagging=&list-type=2&prefix=a%20b%2Bc~&x-id=GetObject"
    request = header_signed("PUT", url, b"body", **{"Content-Type": "text/plain"})
    unsigned = AWSRequest(
        method="PUT",
        url=url,
        data=b"body",
        headers={k: v for k, v in request.headers.items() if k != "Authorization"},
    )
    unsigned.context["timestamp"] = request.headers["X-Amz-Date"]
    expected = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", REGION).canonical_request(
        unsigned
    )
    mine = as_sent(request)
    signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")

    assert (
        sigv4.canonical_request(
            method="PUT",
            uri=sigv4.canonical_uri(mine.raw_path),
            query=sigv4.canonical_query(mine.raw_query),
            headers=sigv4.canonical_headers(signed, mine.headers),
            signed=signed,
            payload=mine.headers["x-amz-content-sha256"],
        )
        == expected
    )


@pytest.mark.parametrize("key", KEYS)
def test_botocore_header_auth_is_accepted_with_its_payload_digest(key: str) -> None:
    url = (
        s3_client()
        .generate_presigned_url("put_object", Params={"Bucket": "uploads", "Key": key})
        .split("?")[0]
    )
    request = header_signed("PUT", url, b"hello", **{"Content-Type": "text/plain"})

    sender = authenticator().authenticate(as_sent(request))

    assert sender == Authenticated(ACCESS_KEY, request.headers["X-Amz-Content-SHA256"])


@pytest.mark.parametrize("key", KEYS)
def test_botocore_presigned_urls_are_accepted_unsigned_payload(key: str) -> None:
    url = presigned_put(key, ContentType="application/pdf", ContentLength=5, IfNoneMatch="*")
    headers = {"Content-Type": "application/pdf", "If-None-Match": "*"}

    sender = authenticator().authenticate(sent("PUT", url, headers, body=b"12345"))

    assert sender == Authenticated(ACCESS_KEY, None)


def test_anonymous_requests_are_anonymous() -> None:
    assert authenticator().authenticate(sent("GET", f"{ENDPOINT}/uploads/a")) is None


PDF_HEADERS = {"Content-Type": "application/pdf", "If-None-Match": "*"}


def pdf_url() -> str:
    return presigned_put("t/a.pdf", ContentType="application/pdf", ContentLength=5, IfNoneMatch="*")


CHANGES = [
    (
        "other key",
        lambda u: u.replace("/t/a.pdf", "/t/b.pdf"),
        {},
        403,
        "SignatureDoesNotMatch",
    ),
    (
        "longer expiry",
        lambda u: with_query(u, **{"X-Amz-Expires": "600"}),
        {},
        403,
        "SignatureDoesNotMatch",
    ),
    (
        "added parameter",
        lambda u: u + "&versionId=1",
        {},
        403,
        "SignatureDoesNotMatch",
    ),
    (
        "other signature",
        lambda u: with_query(u, **{"X-Amz-Signature": "0" * 64}),
        {},
        403,
        "SignatureDoesNotMatch",
    ),
    ("other type", lambda u: u, {"Content-Type": "text/html"}, 403, "SignatureDoesNotMatch"),
    ("other length", lambda u: u, {"Content-Length": "6"}, 403, "SignatureDoesNotMatch"),
    ("dropped header", lambda u: u, {"If-None-Match": None}, 400, "AccessDenied"),
    ("unsigned metadata", lambda u: u, {"x-amz-meta-owner": "eve"}, 400, "AccessDenied"),
    (
        "unknown key",
        lambda u: u.replace(ACCESS_KEY, "someone-else"),
        {},
        403,
        "InvalidAccessKeyId",
    ),
    (
        "other region",
        lambda u: u.replace(REGION, "eu-west-1"),
        {},
        400,
        "AuthorizationHeaderMalformed",
    ),
    (
        "other algorithm",
        lambda u: with_query(u, **{"X-Amz-Algorithm": "AWS4-HMAC-SHA1"}),
        {},
        400,
        "AuthorizationQueryParametersError",
    ),
    (
        "missing parameter",
        lambda u: u.replace("X-Amz-Date", "X-Amz-Dat"),
        {},
        400,
        "AuthorizationQueryParametersError",
    ),
    (
        "expiry over a week",
        lambda u: with_query(u, **{"X-Amz-Expires": "604801"}),
        {},
        400,
        "AuthorizationQueryParametersError",
    ),
    (
        "host not signed",
        lambda u: with_query(u, **{"X-Amz-SignedHeaders": "content-type"}),
        {},
        400,
        "AccessDenied",
    ),
]


@pytest.mark.parametrize(
    ("case", "url", "headers", "status", "code"),
    CHANGES,
    ids=[case[0] for case in CHANGES],
)
def test_a_changed_presigned_request_is_refused(
    case: str, url: Any, headers: dict[str, str | None], status: int, code: str
) -> None:
    merged = {**PDF_HEADERS, "Content-Length": "5", **headers}
    request = sent("PUT", url(pdf_url()), {k: v for k, v in merged.items() if v is not None})

    error = refused(request)

    assert (error.status, error.code) == (status, code), error.message


def test_an_expired_url_is_refused_and_a_future_one_is_not_yet_valid(
    signing_clock: Any,
) -> None:
    signing_clock(-301)
    expired = refused(sent("PUT", pdf_url(), {**PDF_HEADERS, "Content-Length": "5"}))
    signing_clock(+16 * 60)
    future = refused(sent("PUT", pdf_url(), {**PDF_HEADERS, "Content-Length": "5"}))
    signing_clock(-299)
    almost = authenticator().authenticate(
        sent("PUT", pdf_url(), {**PDF_HEADERS, "Content-Length": "5"})
    )

    assert (expired.status, expired.code, expired.message) == (
        403,
        "AccessDenied",
        "Request has expired",
    )
    assert (future.status, future.code, future.message) == (
        403,
        "AccessDenied",
        "Request is not valid yet",
    )
    assert almost is not None


def test_header_auth_is_refused_when_changed_skewed_or_signed_with_another_secret(
    signing_clock: Any,
) -> None:
    url = f"{ENDPOINT}/uploads/k"
    tampered = as_sent(header_signed("GET", url))
    tampered = SignedRequest("GET", "/uploads/other", "", tampered.headers)
    wrong = header_signed("GET", url)
    wrong.headers["Authorization"] = wrong.headers["Authorization"].replace(ACCESS_KEY, "x")
    other_secret = Authenticator({ACCESS_KEY: "not-the-secret"}, REGION)
    valid = as_sent(header_signed("GET", url))
    signing_clock(-16 * 60)
    skewed = header_signed("GET", url)

    assert refused(tampered).code == "SignatureDoesNotMatch"
    assert refused(as_sent(wrong)).code == "InvalidAccessKeyId"
    assert refused(valid, other_secret).code == "SignatureDoesNotMatch"
    assert (refused(as_sent(skewed)).status, refused(as_sent(skewed)).code) == (
        403,
        "RequestTimeTooSkewed",
    )


def test_header_auth_without_date_or_with_sigv2_is_refused() -> None:
    request = as_sent(header_signed("GET", f"{ENDPOINT}/uploads/k"))
    undated = SignedRequest(
        "GET", "/uploads/k", "", {k: v for k, v in request.headers.items() if k != "x-amz-date"}
    )
    v2 = SignedRequest("GET", "/uploads/k", "", {"host": "h", "authorization": "AWS a:b"})

    assert (refused(undated).status, refused(undated).code) == (400, "AccessDenied")
    assert (refused(v2).status, refused(v2).code) == (400, "InvalidRequest")


def test_the_canonical_uri_and_query_follow_the_spec() -> None:
    assert (
        sigv4.canonical_uri("/uploads/a%20b/%E2%82%AC+~.txt") == "/uploads/a%20b/%E2%82%AC%2B~.txt"
    )
    assert sigv4.canonical_uri("") == "/"
    assert (
        sigv4.canonical_query(
            "b=2&a=%2F&a=1&X-Amz-Signature=s&c&d=x+y", leave_out=frozenset({"X-Amz-Signature"})
        )
        == "a=%2F&a=1&b=2&c=&d=x%20y"
    )
    assert sigv4.canonical_headers(["b", "a"], {"a": "  x   y ", "b": "z"}) == "a:x y\nb:z\n"
