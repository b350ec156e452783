"""MinIO's bucket-notification JSON for an object-created event (pure, no I/O).

MinIO publishes ``{"EventName", "Key", "Records": [record]}`` to its AMQP target, where ``Key``
is ``bucket/`` + the object name as stored and each record follows the S3 event message
structure (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)
with ``s3.object.key`` escaped like Go's ``url.QueryEscape`` (``/`` → ``%2F``, space → ``+``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

OWNER = "minioadmin"


@dataclass(frozen=True)
class CreatedObject:
    event_name: str
    """``s3:ObjectCreated:Put``, ``…:Post``, ``…:Copy`` or ``…:CompleteMultipartUpload``."""
    bucket: str
    key: str
    size: int
    etag: str
    content_type: str
    user_metadata: Mapping[str, str] = field(default_factory=dict)


def notification(
    obj: CreatedObject,
    *,
    sequencer: str,
    time: datetime,
    source_host: str = "127.0.0.1",
    endpoint: str = "http://127.0.0.1:9000",
    region: str = "",
) -> dict[str, Any]:
    """The JSON MinIO publishes for ``obj``."""
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": region,
        "eventTime": time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{time.microsecond // 1000:03d}Z",
        "eventName": obj.event_name,
        "userIdentity": {"principalId": OWNER},
        "requestParameters": {
            "principalId": OWNER,
            "region": region,
            "sourceIPAddress": source_host,
        },
        "responseElements": {"x-amz-request-id": sequencer, "x-minio-origin-endpoint": endpoint},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": obj.bucket,
                "ownerIdentity": {"principalId": OWNER},
                "arn": f"arn:aws:s3:::{obj.bucket}",
            },
            "object": {
                "key": quote_plus(obj.key, safe=""),
                "size": obj.size,
                "eTag": obj.etag.strip('"'),
                "contentType": obj.content_type,
                "userMetadata": {"content-type": obj.content_type, **obj.user_metadata},
                "sequencer": sequencer,
            },
        },
        "source": {"host": source_host, "port": "", "userAgent": "filepipe local S3 (moto)"},
    }
    return {"EventName": obj.event_name, "Key": f"{obj.bucket}/{obj.key}", "Records": [record]}
