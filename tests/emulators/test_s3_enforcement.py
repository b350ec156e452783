"""The local S3 server refuses what MinIO refuses, over real HTTP, before moto stores anything.

Each refusal is checked for S3's XML error code and status (MinIO's, see ``local.s3_errors``),
for nothing stored, and for no notification published. URLs come from the presign code itself
(``filepipe.storage.presign_put``); POST policies and header-signed requests from botocore.
"""

from __future__ import annotations

import hashlib
import re
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from filepipe.config import Settings
from filepipe.presigner import Presigner
from filepipe.storage import create_s3_client, presign_put
from tests.support.inbox import Inbox
from tests.support.signing import with_query

pytestmark = pytest.mark.integration

BODY = b"%PDF-1.7\n" + b"enforced " * 100 + b"\n%%EOF\n"
TYPE = "application/pdf"


@pytest.fixture
def key() -> str:
    return f"enforce/{uuid.uuid4()}/doc.pdf"


def presign(
    presigner: Any, settings: Settings, key: str, body: bytes = BODY, *, sha256: bool = True
) -> tuple[str, dict[str, str]]:
    upload = presign_put(
        Presigner.of(presigner),
        bucket=settings.s3_bucket,
        key=key,
        content_type=TYPE,
        size=len(body),
        sha256_hex=hashlib.sha256(body).hexdigest() if sha256 else None,
        expires_in=300,
    )
    return upload.url, upload.headers


def put(url: str, headers: dict[str, str], body: bytes = BODY) -> requests.Response:
    return requests.put(url, data=body, headers=headers, timeout=10)


def error_code(response: requests.Response) -> str:
    found = re.search(r"<Code>([^<]*)</Code>", response.text)
    return found.group(1) if found else ""


def assert_refused(response: requests.Response, status: int, code: str) -> None:
    assert (response.status_code, error_code(response)) == (status, code), response.text
    assert response.headers["Content-Type"] == "application/xml"
    assert response.headers["x-amz-request-id"] in response.text


def stored(admin: Any, settings: Settings, key: str) -> bytes | None:
    try:
        body: bytes = admin.get_object(Bucket=settings.s3_bucket, Key=key)["Body"].read()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NoSuchKey"
        return None
    return body


def test_the_declared_body_is_stored_once_and_notified(
    settings: Settings, presigner: Any, admin: Any, key: str, notifications: Inbox
) -> None:
    url, headers = presign(presigner, settings, key)

    response = put(url, headers)

    assert response.status_code == 200, response.text
    assert stored(admin, settings, key) == BODY
    record = notifications.next()[1]["Records"][0]
    assert record["s3"]["object"]["size"] == len(BODY)
    assert record["userIdentity"]["principalId"] == settings.s3_access_key_id
    assert notifications.empty()


TAMPERED = [
    ("other key in the path", {"path": "other.pdf"}, 403, "SignatureDoesNotMatch"),
    ("longer expiry", {"query": {"X-Amz-Expires": "604800"}}, 403, "SignatureDoesNotMatch"),
    (
        "forged signature",
        {"query": {"X-Amz-Signature": "f" * 64}},
        403,
        "SignatureDoesNotMatch",
    ),
    ("other access key", {"credential": "someone"}, 403, "InvalidAccessKeyId"),
    (
        "other content type",
        {"headers": {"Content-Type": "text/html"}},
        403,
        "SignatureDoesNotMatch",
    ),
    (
        "other checksum",
        {"headers": {"x-amz-checksum-sha256": "A" * 43 + "="}},
        403,
        "SignatureDoesNotMatch",
    ),
    ("dropped If-None-Match", {"drop": "If-None-Match"}, 400, "AccessDenied"),
    ("dropped checksum", {"drop": "x-amz-checksum-sha256"}, 400, "AccessDenied"),
    ("unsigned metadata", {"headers": {"x-amz-meta-owner": "eve"}}, 400, "AccessDenied"),
]


@pytest.mark.parametrize(
    ("case", "change", "status", "code"),
    TAMPERED,
    ids=[case[0] for case in TAMPERED],
)
def test_a_tampered_url_or_header_is_refused_and_nothing_is_stored(
    settings: Settings,
    presigner: Any,
    admin: Any,
    key: str,
    notifications: Inbox,
    case: str,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    url, headers = presign(presigner, settings, key)
    if "path" in change:
        url = url.replace("/doc.pdf?", f"/{change['path']}?")
    if "query" in change:
        url = with_query(url, **change["query"])
    if "credential" in change:
        url = url.replace(f"={settings.s3_access_key_id}%2F", f"={change['credential']}%2F")
    headers = {**headers, **change.get("headers", {})}
    headers.pop(change.get("drop", ""), None)

    response = put(url, headers)

    assert_refused(response, status, code)
    assert stored(admin, settings, key) is None
    assert stored(admin, settings, key.replace("doc.pdf", "other.pdf")) is None
    assert notifications.empty()


def test_an_expired_url_is_refused(
    settings: Settings,
    presigner: Any,
    admin: Any,
    key: str,
    notifications: Inbox,
    signing_clock: Any,
) -> None:
    signing_clock(-301)  # signed 301 s ago, valid for 300 s
    url, headers = presign(presigner, settings, key)

    response = put(url, headers)

    assert_refused(response, 403, "AccessDenied")
    assert "Request has expired" in response.text
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_a_body_other_than_the_declared_one_is_refused(
    settings: Settings, presigner: Any, admin: Any, key: str, notifications: Inbox
) -> None:
    url, headers = presign(presigner, settings, key)
    forged = BODY.replace(b"enforced", b"ENFORCED")  # same type and length, another digest

    response = put(url, headers, forged)

    assert_refused(response, 400, "XAmzContentChecksumMismatch")
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_a_body_of_another_length_is_refused(
    settings: Settings, presigner: Any, admin: Any, key: str, notifications: Inbox
) -> None:
    url, headers = presign(presigner, settings, key, sha256=False)

    longer = put(url, headers, BODY + b"more")
    shorter = put(url, headers, BODY[:-1])

    assert_refused(longer, 403, "SignatureDoesNotMatch")  # its Content-Length is signed
    assert_refused(shorter, 403, "SignatureDoesNotMatch")
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_a_body_cut_short_of_its_content_length_is_refused(
    settings: Settings, presigner: Any, admin: Any, key: str, notifications: Inbox
) -> None:
    url, headers = presign(presigner, settings, key)
    parts = urlsplit(url)
    sent = {**headers, "Content-Length": str(len(BODY))}  # signed, declared, then not all sent
    head = "".join(f"{name}: {value}\r\n" for name, value in sent.items())
    request = f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(request.encode() + BODY[:-10])
        connection.shutdown(socket.SHUT_WR)  # the client gives up 10 bytes early
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"<Code>IncompleteBody</Code>" in answer
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_a_second_put_to_the_same_url_is_refused_412(
    settings: Settings, presigner: Any, admin: Any, key: str, notifications: Inbox
) -> None:
    url, headers = presign(presigner, settings, key, sha256=False)
    assert put(url, headers).status_code == 200
    notifications.next()

    again = put(url, headers, BODY.replace(b"enforced", b"replaced"))

    assert_refused(again, 412, "PreconditionFailed")
    assert stored(admin, settings, key) == BODY
    assert notifications.empty()


def test_concurrent_puts_to_one_presigned_key_create_it_once(
    settings: Settings, presigner: Any, admin: Any, key: str, notifications: Inbox
) -> None:
    url, headers = presign(presigner, settings, key, sha256=False)
    bodies = [BODY.replace(b"enforced", f"racer{n:03d}".encode()) for n in range(8)]

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda body: put(url, headers, body), bodies))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * 7, [r.text for r in responses]
    [winner] = [body for body, r in zip(bodies, responses, strict=True) if r.status_code == 200]
    assert stored(admin, settings, key) == winner
    notifications.next()
    assert notifications.empty()


def test_completing_a_multipart_upload_over_an_existing_key_with_if_none_match_is_refused(
    settings: Settings, admin: Any, key: str, notifications: Inbox
) -> None:
    bucket = settings.s3_bucket
    admin.put_object(Bucket=bucket, Key=key, Body=BODY)
    notifications.next()
    upload = admin.create_multipart_upload(Bucket=bucket, Key=key)
    part = admin.upload_part(
        Bucket=bucket, Key=key, PartNumber=1, UploadId=upload["UploadId"], Body=b"late"
    )

    with pytest.raises(ClientError) as refused:
        admin.complete_multipart_upload(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
            IfNoneMatch="*",
        )

    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert stored(admin, settings, key) == BODY
    assert notifications.empty()


def test_anonymous_requests_are_refused(
    s3_server: str, settings: Settings, admin: Any, key: str, notifications: Inbox
) -> None:
    url = f"{s3_server}/{settings.s3_bucket}/{key}"

    assert_refused(requests.put(url, data=BODY, timeout=10), 403, "AccessDenied")
    assert_refused(requests.get(url, timeout=10), 403, "AccessDenied")
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_header_auth_with_another_secret_is_refused(
    settings: Settings, admin: Any, key: str, notifications: Inbox
) -> None:
    forger = create_s3_client(
        Settings.from_env(
            {
                "FILEPIPE_S3_ENDPOINT_URL": str(settings.s3_endpoint_url),
                "FILEPIPE_S3_ACCESS_KEY_ID": str(settings.s3_access_key_id),
                "FILEPIPE_S3_SECRET_ACCESS_KEY": "guessed",
            }
        )
    )

    with pytest.raises(ClientError) as refused:
        forger.put_object(Bucket=settings.s3_bucket, Key=key, Body=BODY)

    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_a_header_signed_body_swapped_after_signing_is_refused(
    settings: Settings, admin: Any, key: str, notifications: Inbox
) -> None:
    url = f"{settings.s3_endpoint_url}/{settings.s3_bucket}/{key}"
    request = AWSRequest(method="PUT", url=url, data=BODY)
    credentials = Credentials(str(settings.s3_access_key_id), str(settings.s3_secret_access_key))
    S3SigV4Auth(credentials, "s3", settings.s3_region).add_auth(request)
    swapped = BODY.replace(b"enforced", b"swapped!")

    response = requests.put(url, data=swapped, headers=dict(request.headers.items()), timeout=10)

    assert_refused(response, 400, "XAmzContentSHA256Mismatch")
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_a_wrong_sdk_checksum_is_refused(
    settings: Settings, admin: Any, key: str, notifications: Inbox
) -> None:
    with pytest.raises(ClientError) as refused:
        admin.put_object(Bucket=settings.s3_bucket, Key=key, Body=BODY, ChecksumCRC32="AAAAAA==")

    assert refused.value.response["Error"]["Code"] == "XAmzContentChecksumMismatch"
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def post_policy(admin: Any, settings: Settings, key: str, **extra: Any) -> dict[str, Any]:
    """A browser-upload form for ``key`` under ``uploads/…`` with type and size conditions."""
    form: dict[str, Any] = admin.generate_presigned_post(
        settings.s3_bucket,
        key,
        Fields={"Content-Type": TYPE},
        Conditions=[
            {"Content-Type": TYPE},
            ["starts-with", "$key", "enforce/"],
            ["content-length-range", 10, 2000],
        ],
        ExpiresIn=extra.pop("expires_in", 300),
    )
    return form


def post(form: dict[str, Any], body: bytes = BODY, **fields: str) -> requests.Response:
    data = {**form["fields"], **fields}
    return requests.post(form["url"], data=data, files={"file": ("doc.pdf", body)}, timeout=10)


def test_a_post_policy_upload_within_the_policy_is_stored_and_notified(
    settings: Settings, admin: Any, key: str, notifications: Inbox
) -> None:
    response = post(post_policy(admin, settings, key))

    assert response.status_code == 204, response.text
    assert stored(admin, settings, key) == BODY
    assert notifications.next()[1]["EventName"] == "s3:ObjectCreated:Post"


OUTSIDE_POLICY = [
    (
        "key outside the prefix",
        BODY,
        {"key": "elsewhere/doc.pdf"},
        403,
        "AccessDenied",
        '["starts-with", "$key", "enforce/"]',
    ),
    (
        "other content type",
        BODY,
        {"Content-Type": "text/html"},
        403,
        "AccessDenied",
        '["eq", "$content-type", "application/pdf"]',
    ),
    (
        "field not in the policy",
        BODY,
        {"x-amz-meta-owner": "eve"},
        403,
        "AccessDenied",
        "x-amz-meta-owner",
    ),
    ("file too large", BODY * 3, {}, 400, "EntityTooLarge", "exceeds the maximum"),
    ("file too small", b"%PDF", {}, 400, "EntityTooSmall", "smaller than the minimum"),
    ("tampered policy", BODY, {"policy": "e30="}, 403, "SignatureDoesNotMatch", ""),
    ("forged signature", BODY, {"x-amz-signature": "0" * 64}, 403, "SignatureDoesNotMatch", ""),
]


@pytest.mark.parametrize(
    ("case", "body", "fields", "status", "code", "message"),
    OUTSIDE_POLICY,
    ids=[case[0] for case in OUTSIDE_POLICY],
)
def test_a_post_policy_upload_outside_the_policy_is_refused(
    settings: Settings,
    admin: Any,
    key: str,
    notifications: Inbox,
    case: str,
    body: bytes,
    fields: dict[str, str],
    status: int,
    code: str,
    message: str,
) -> None:
    response = post(post_policy(admin, settings, key), body, **fields)

    assert_refused(response, status, code)
    assert message in response.text.replace("&quot;", '"')
    assert stored(admin, settings, key) is None
    assert stored(admin, settings, "elsewhere/doc.pdf") is None
    assert notifications.empty()


def test_an_expired_post_policy_is_refused(
    settings: Settings, admin: Any, key: str, notifications: Inbox, signing_clock: Any
) -> None:
    signing_clock(-120)
    form = post_policy(admin, settings, key, expires_in=60)

    response = post(form)

    assert_refused(response, 403, "AccessDenied")
    assert "Policy expired" in response.text
    assert stored(admin, settings, key) is None
    assert notifications.empty()


def test_boto3_metadata_with_underscores_and_odd_keys_is_signed_and_accepted(
    settings: Settings, admin: Any, notifications: Inbox
) -> None:
    key = f"enforce/{uuid.uuid4()}/a b+c~ü=&.pdf"

    admin.put_object(
        Bucket=settings.s3_bucket, Key=key, Body=BODY, Metadata={"my_key": "v", "other-key": "w"}
    )

    head = admin.head_object(Bucket=settings.s3_bucket, Key=key)
    assert head["Metadata"] == {"my_key": "v", "other-key": "w"}
    assert notifications.next()[1]["Key"] == f"{settings.s3_bucket}/{key}"
    listing = admin.list_objects_v2(Bucket=settings.s3_bucket, Prefix=key.rsplit("/", 1)[0])
    assert [item["Key"] for item in listing["Contents"]] == [key]
