"""``filepipe.presigner`` makes the URL botocore makes for the same inputs and time, and the
local S3 server's verifier (``filepipe.sigv4``, through ``local.s3_auth``) accepts it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.config import Config

from filepipe import sigv4
from filepipe.presigner import Presigner
from filepipe.storage import checksum_header, presign_body

DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def client(**credentials: Any) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url="http://127.0.0.1:9000",
        region_name="eu-west-3",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        **credentials,
    )


@pytest.mark.parametrize("session_token", [None, "FwoGZXIvYXdzEJr//token+/="])
@pytest.mark.parametrize("sha256_hex", [None, DIGEST])
@pytest.mark.parametrize("key", ["tenant/6f1c/report.pdf", "t/a b+c~(1)!.pdf"])
def test_a_put_url_equals_botocores(
    session_token: str | None, sha256_hex: str | None, key: str
) -> None:
    s3 = client(aws_session_token=session_token) if session_token else client()
    params = {
        "Bucket": "uploads",
        "Key": key,
        "ContentType": "application/pdf",
        "ContentLength": 1234,
        "IfNoneMatch": "*",
    }
    headers = {"Content-Type": "application/pdf", "If-None-Match": "*"}
    expected = presign_body(s3, "put_object", params, headers, sha256_hex, 900)
    [amz_date] = parse_qs(urlsplit(expected.url).query)["X-Amz-Date"]
    now = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    signed = {**expected.headers, "Content-Length": "1234"}

    url = Presigner.of(s3).presign("PUT", "uploads", key, headers=signed, expires_in=900, now=now)

    assert url == expected.url
    if sha256_hex:
        assert expected.headers["x-amz-checksum-sha256"] == checksum_header(sha256_hex)


def test_the_signing_key_is_derived_once_a_day(monkeypatch: pytest.MonkeyPatch) -> None:
    presigner = Presigner.of(client())
    derived: list[str] = []
    real = sigv4.signing_key

    def counting(secret: str, date: str, region: str, service: str) -> bytes:
        derived.append(date)
        return real(secret, date, region, service)

    monkeypatch.setattr(sigv4, "signing_key", counting)
    for day, hour in ((1, 0), (1, 12), (1, 23), (2, 0)):
        now = datetime(2026, 12, day, hour, tzinfo=UTC)
        presigner.presign("PUT", "uploads", "k", headers={}, expires_in=60, now=now)

    assert derived == ["20261201", "20261202"]
