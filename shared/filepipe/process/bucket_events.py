"""Bucket notifications in MinIO's (S3-compatible) event format, as RabbitmqSource delivers them.

MinIO publishes ``{"EventName", "Key", "Records": [...]}``; each record's ``s3.object.key`` is
URL-query-escaped (``/`` → ``%2F``, space → ``+``). RabbitmqSource wraps the AMQP body as the data
of a ``dev.knative.rabbitmq.event`` CloudEvent. Format:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from filepipe.errors import FilepipeError

RABBITMQ_EVENT = "dev.knative.rabbitmq.event"


class InvalidNotification(FilepipeError, ValueError):
    """The event is not an S3/MinIO object notification."""


@dataclass(frozen=True)
class ObjectCreated:
    event_name: str
    bucket: str
    key: str
    size: int | None
    etag: str | None


def parse_notification(data: Any) -> list[ObjectCreated]:
    """The object-created records of a notification (bytes, str or already-decoded JSON)."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidNotification(f"notification is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("Records"), list):
        raise InvalidNotification("notification has no Records list")
    created = []
    for record in data["Records"]:
        try:
            name = str(record["eventName"])
            s3 = record["s3"]
            bucket, raw_key = str(s3["bucket"]["name"]), str(s3["object"]["key"])
        except (KeyError, TypeError) as exc:
            raise InvalidNotification(f"record lacks {exc}") from exc
        if "ObjectCreated:" not in name:
            continue
        obj = s3["object"]
        created.append(
            ObjectCreated(
                event_name=name,
                bucket=bucket,
                key=unquote_plus(raw_key),
                size=obj.get("size"),
                etag=obj.get("eTag"),
            )
        )
    return created


def redrive_notification(bucket: str, key: str, size: int, etag: str) -> dict[str, Any]:
    """A minimal notification for an object whose original notification was lost."""
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "filepipe:reconcile",
                "eventName": "s3:ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": quote_plus(key, safe=""), "size": size, "eTag": etag},
                },
            }
        ],
    }
