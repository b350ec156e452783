from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from filepipe.process.bucket_events import parse_notification
from local.minio_events import CreatedObject, Origin, Request, encode, event_time, notification

SAMPLE = json.loads((Path(__file__).parents[1] / "events" / "minio-put-event.json").read_text())
WHEN = datetime(2026, 11, 28, 21, 14, 3, 512000, tzinfo=UTC)
NANOS = int(WHEN.timestamp()) * 1_000_000_000 + 512_345_678
ORIGIN = Origin("http://127.0.0.1:9000", "0f7a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
REQUEST = Request("187C1D4E0B5C3A11", "172.18.0.1", "Boto3/1.35")


def build(key: str, event_name: str = "s3:ObjectCreated:Put", **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_name": event_name,
        "bucket": "uploads",
        "key": key,
        "size": 84452,
        "etag": '"eb52f8e46f60a27a8a1a704e25757f30"',
        "content_type": "application/pdf",
        **changes,
    }
    return notification(CreatedObject(**fields), REQUEST, ORIGIN, nanos=NANOS)


def test_shape_matches_what_minio_publishes() -> None:
    body = build("tenant-a/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/report 2026.pdf")
    assert body["EventName"] == SAMPLE["EventName"]
    assert body["Key"] == SAMPLE["Key"]
    [record], [sample] = body["Records"], SAMPLE["Records"]
    assert set(record) == set(sample)
    assert record["eventTime"] == sample["eventTime"] == "2026-11-28T21:14:03.512Z"
    for name in ("eventVersion", "eventSource", "awsRegion", "eventName", "userIdentity"):
        assert record[name] == sample[name]
    assert record["requestParameters"] == sample["requestParameters"]
    assert set(record["responseElements"]) == set(sample["responseElements"])
    assert record["responseElements"]["x-amz-request-id"] == REQUEST.request_id
    assert record["s3"]["bucket"] == sample["s3"]["bucket"]
    assert {**record["s3"]["object"], "sequencer": "-"} == {
        **sample["s3"]["object"],
        "sequencer": "-",
    }
    assert (record["s3"]["s3SchemaVersion"], record["s3"]["configurationId"]) == ("1.0", "Config")
    assert record["source"] == {"host": "172.18.0.1", "port": "", "userAgent": "Boto3/1.35"}


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("a/b/c.pdf", "a%2Fb%2Fc.pdf"),
        ("report 2026.pdf", "report+2026.pdf"),
        ("a+b.txt", "a%2Bb.txt"),
        ("ü/€ x.txt", "%C3%BC%2F%E2%82%AC+x.txt"),
        ("~_.-!*'()%&=?#.txt", "~_.-%21%2A%27%28%29%25%26%3D%3F%23.txt"),
    ],
)
def test_record_key_is_escaped_like_go_query_escape_and_top_level_key_is_not(
    key: str, escaped: str
) -> None:
    body = build(key)
    assert body["Records"][0]["s3"]["object"]["key"] == escaped
    assert body["Key"] == f"uploads/{key}"
    [parsed] = parse_notification(body)  # what the process function reads
    assert (parsed.bucket, parsed.key) == ("uploads", key)


def test_every_kind_of_creation_keeps_its_full_event_name() -> None:
    for name in (
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
    ):
        body = build("k", name)
        assert body["EventName"] == body["Records"][0]["eventName"] == name


def test_etag_loses_its_quotes_and_multipart_suffix_stays() -> None:
    obj = build("k", etag='"0123456789abcdef0123456789abcdef-2"')["Records"][0]["s3"]["object"]
    assert obj["eTag"] == "0123456789abcdef0123456789abcdef-2"


def test_user_metadata_as_minio_stores_it() -> None:
    headers = {
        "content-type": "text/plain",
        "x-amz-meta-project": "apollo",
        "X-AMZ-META-owner-team": "infra",
        "cache-control": "no-cache",
        "content-md5": "ignored",
    }
    obj = build("k", content_type="text/plain", headers=headers)["Records"][0]["s3"]["object"]
    assert obj["contentType"] == "text/plain"
    assert obj["userMetadata"] == {
        "content-type": "text/plain",
        "X-Amz-Meta-Project": "apollo",
        "X-Amz-Meta-Owner-Team": "infra",
        "cache-control": "no-cache",
    }


def test_sequencer_and_event_time_come_from_the_same_instant() -> None:
    record = build("k")["Records"][0]
    assert int(record["s3"]["object"]["sequencer"], 16) == NANOS
    assert record["s3"]["object"]["sequencer"].isupper()
    assert event_time(NANOS) == record["eventTime"]
    assert event_time(0) == "1970-01-01T00:00:00.000Z"
    assert event_time(999_999_999) == "1970-01-01T00:00:00.999Z"


def test_encoding_is_compact_utf8_json() -> None:
    body = build("ü.txt")
    raw = encode(body)
    assert json.loads(raw) == body
    assert "ü.txt".encode() in raw and b'", "' not in raw
