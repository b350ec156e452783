from __future__ import annotations

import json
from pathlib import Path

import pytest

from filepipe.process.bucket_events import (
    InvalidNotification,
    parse_notification,
    redrive_notification,
)

EVENTS = Path(__file__).parents[1] / "events"


def test_minio_put_event_is_parsed_and_its_key_unescaped() -> None:
    raw = (EVENTS / "minio-put-event.json").read_bytes()
    [record] = parse_notification(raw)
    assert record.bucket == "uploads"
    assert record.key == "tenant-a/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0/report 2026.pdf"
    assert (record.size, record.etag) == (84452, "eb52f8e46f60a27a8a1a704e25757f30")
    assert json.loads(raw)["Key"] == f"uploads/{record.key}"


def test_redrive_notification_round_trips() -> None:
    key = "t/a b+c%/ü.pdf"
    [record] = parse_notification(redrive_notification("uploads", key, 5, "abc"))
    assert (record.bucket, record.key, record.size, record.etag) == ("uploads", key, 5, "abc")


def test_non_created_records_are_skipped() -> None:
    data = redrive_notification("b", "k", 1, "e")
    data["Records"][0]["eventName"] = "s3:ObjectRemoved:Delete"
    assert parse_notification(data) == []


@pytest.mark.parametrize("data", [b"not json", b"[]", {"Records": [{"s3": {}}]}, {"x": 1}])
def test_malformed_notifications_are_refused(data: object) -> None:
    with pytest.raises(InvalidNotification):
        parse_notification(data)
