"""MinIO's bucket-notification JSON for an object-created event (pure: no I/O, no clock).

MinIO publishes ``{"EventName", "Key", "Records": [record]}`` to its AMQP target, where ``Key``
is ``bucket/`` + the object name as stored and the record follows the S3 event message structure
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html) with
MinIO's values: ``eventVersion`` "2.0", ``eventSource`` "minio:s3", the full ``s3:…`` event name,
``s3.object.key`` escaped like Go's ``url.QueryEscape`` (``/`` → ``%2F``, space → ``+``), the eTag
without quotes, and ``sequencer`` = the event time in Unix nanoseconds as upper-case hex.
``../shared/examples/minio-put-event.json`` is a sample (``tests/events/`` holds a copy).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

PRINCIPAL = "minioadmin"
"""The identity MinIO reports for its default root user."""

KEPT_HEADERS = (
    "cache-control",
    "content-encoding",
    "content-disposition",
    "content-language",
    "expires",
)
"""Stored headers MinIO keeps in ``userMetadata`` (lower-case) besides ``content-type``."""

USER_METADATA_PREFIX = "x-amz-meta-"


@dataclass(frozen=True)
class CreatedObject:
    """An object as stored after a successful write."""

    event_name: str
    """``s3:ObjectCreated:Put``, ``…:Post``, ``…:Copy`` or ``…:CompleteMultipartUpload``."""
    bucket: str
    key: str
    """The object name, unescaped."""
    size: int
    etag: str
    """With or without the quotes S3 puts around it."""
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)
    """Stored metadata headers (``x-amz-meta-*``, ``content-type``, …), in any case."""


@dataclass(frozen=True)
class Request:
    """What MinIO reports about the request that created the object."""

    request_id: str
    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    principal: str = PRINCIPAL
    """The access key the request was signed with (MinIO's ``principalId``)."""


@dataclass(frozen=True)
class Origin:
    """The server that handled the request (MinIO's ``x-minio-*`` response elements)."""

    endpoint: str
    deployment_id: str


def notification(
    obj: CreatedObject, request: Request, origin: Origin, *, nanos: int
) -> dict[str, Any]:
    """The JSON MinIO publishes for ``obj``, created at ``nanos`` (Unix time in nanoseconds)."""
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": event_time(nanos),
        "eventName": obj.event_name,
        "userIdentity": {"principalId": request.principal},
        "requestParameters": {
            "principalId": request.principal,
            "region": "",
            "sourceIPAddress": request.source_ip,
        },
        "responseElements": {
            "x-amz-id-2": hashlib.sha256(origin.endpoint.encode()).hexdigest(),
            "x-amz-request-id": request.request_id,
            "x-minio-deployment-id": origin.deployment_id,
            "x-minio-origin-endpoint": origin.endpoint,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": obj.bucket,
                "ownerIdentity": {"principalId": request.principal},
                "arn": f"arn:aws:s3:::{obj.bucket}",
            },
            "object": {
                "key": quote_plus(obj.key, safe=""),
                "size": obj.size,
                "eTag": obj.etag.strip('"'),
                "contentType": obj.content_type,
                "userMetadata": user_metadata(obj.content_type, obj.headers),
                "sequencer": f"{nanos:X}",
            },
        },
        "source": {"host": request.source_ip, "port": "", "userAgent": request.user_agent},
    }
    return {"EventName": obj.event_name, "Key": f"{obj.bucket}/{obj.key}", "Records": [record]}


def encode(body: Mapping[str, Any]) -> bytes:
    """``body`` as Go's ``json.Marshal`` writes it: compact, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def event_time(nanos: int) -> str:
    """MinIO's ``eventTime``: UTC, milliseconds, ``Z`` (Go layout ``2006-01-02T15:04:05.000Z``)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rest // 1_000_000:03d}Z"


def user_metadata(content_type: str, headers: Mapping[str, str]) -> dict[str, str]:
    """MinIO's ``userMetadata``: supported headers lower-case, ``X-Amz-Meta-*`` canonical."""
    result = {"content-type": content_type}
    for name, value in headers.items():
        lower = name.lower()
        if lower in KEPT_HEADERS:
            result[lower] = value
        elif lower.startswith(USER_METADATA_PREFIX):
            result[_canonical(lower)] = value
    return result


def _canonical(name: str) -> str:
    """Go's ``http.CanonicalHeaderKey``: ``x-amz-meta-my-key`` → ``X-Amz-Meta-My-Key``."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
