from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from filepipe.notifications import parse_notification
from local.minio_events import CreatedObject, notification

SAMPLE = json.loads((Path(__file__).parents[1] / "events" / "minio-put-event.json").read_text())
WHEN = datetime(2026, 11, 28, 21, 14, 3, 512000, tzinfo=UTC)


def build(key: str, event_name: str = "s3:ObjectCreated:Put") -> dict[str, object]:
    obj = CreatedObject(
        event_name, "uploads", key, 84452, '"eb52f8e46f60a27a8a1a704e25757f30"', "application/pdf"
    )
    return notification(obj, sequencer="182178E8B3728CAC", time=WHEN)


def test_shape_matches_what_minio_publishes() -> None:
    body = build("tenant-a/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/report 2026.pdf")
    assert body["EventName"] == SAMPLE["EventName"]
    assert body["Key"] == SAMPLE["Key"]
    record, sample = body["Records"][0], SAMPLE["Records"][0]  # type: ignore[index]
    assert set(record) == set(sample)
    assert record["eventTime"] == sample["eventTime"]
    assert record["s3"]["object"] == sample["s3"]["object"]
    assert record["s3"]["bucket"] == sample["s3"]["bucket"]


def test_keys_are_escaped_like_go_query_escape_and_round_trip() -> None:
    key = "a b/c+d/ü~_.-!.pdf"
    body = build(key)
    escaped = body["Records"][0]["s3"]["object"]["key"]  # type: ignore[index]
    assert escaped == "a+b%2Fc%2Bd%2F%C3%BC~_.-%21.pdf"
    assert body["Key"] == f"uploads/{key}"
    assert parse_notification(body)[0].key == key


def test_event_name_is_kept_for_every_kind_of_creation() -> None:
    for name in (
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
    ):
        body = build("k", name)
        assert body["EventName"] == body["Records"][0]["eventName"] == name  # type: ignore[index]
