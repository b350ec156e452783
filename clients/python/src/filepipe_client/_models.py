"""Typed results: the API's JSON (``shared/filepipe/openapi.yaml``) loaded into dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PENDING = "PENDING"
    UPLOADED = "UPLOADED"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    QUARANTINED = "QUARANTINED"
    CANCELLED = "CANCELLED"
    DELETED = "DELETED"
    MISSING = "MISSING"

    @property
    def settled(self) -> bool:
        """Nothing more happens to the file by itself."""
        return self not in (Status.PENDING, Status.UPLOADED, Status.PROCESSING)

    @property
    def failed(self) -> bool:
        """Settled without verified bytes."""
        return self.settled and self not in (Status.PROCESSED, Status.DELETED)


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(frozen=True)
class File:
    """A file as ``GET /files/{id}`` shows it; ``raw`` is that JSON."""

    id: str
    status: Status
    filename: str
    declared_content_type: str
    declared_size: int | None
    """None: uploaded by Uppy through the Companion routes, size not declared."""
    declared_sha256: str | None
    content_type: str | None
    size: int | None
    sha256: str | None
    error: str | None
    metadata: dict[str, str]
    version: int
    created_at: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> File:
        declared = data["declared"]
        created = _time(data["created_at"])
        assert created is not None
        return cls(
            id=str(data["id"]),
            status=Status(data["status"]),
            filename=str(data["filename"]),
            declared_content_type=str(declared["content_type"]),
            declared_size=None if declared["size"] is None else int(declared["size"]),
            declared_sha256=declared.get("sha256"),
            content_type=data.get("content_type"),
            size=data.get("size"),
            sha256=data.get("sha256"),
            error=data.get("error"),
            metadata=dict(data.get("metadata") or {}),
            version=int(data["version"]),
            created_at=created,
            raw={k: v for k, v in data.items() if k != "upload"},
        )


@dataclass(frozen=True)
class Page:
    """One page of ``GET /files``; pass ``next_cursor`` back for the next (None: the last)."""

    items: list[File]
    next_cursor: str | None


@dataclass(frozen=True)
class SingleUpload:
    """Upload the bytes with one PUT to ``url``, sending exactly ``headers``."""

    url: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class MultipartUpload:
    """Upload ``part_count`` parts of ``part_size`` bytes (the last may be smaller)."""

    upload_id: str
    part_size: int
    part_count: int
    expires_at: datetime


@dataclass(frozen=True)
class CreatedUpload:
    """``POST /uploads``'s answer: the PENDING file (or the one a replayed key created)."""

    file: File
    upload: SingleUpload | MultipartUpload
    replayed: bool

    @classmethod
    def from_json(cls, data: dict[str, Any], *, replayed: bool) -> CreatedUpload:
        upload = data["upload"]
        expires = _time(upload["expires_at"])
        assert expires is not None
        shape: SingleUpload | MultipartUpload
        if upload["method"] == "MULTIPART":
            shape = MultipartUpload(
                str(upload["upload_id"]),
                int(upload["part_size"]),
                int(upload["part_count"]),
                expires,
            )
        else:
            shape = SingleUpload(str(upload["url"]), dict(upload["headers"]), expires)
        return cls(File.from_json(data), shape, replayed)


@dataclass(frozen=True)
class PartUrl:
    """A presigned UploadPart: PUT the part to ``url`` with exactly ``headers``."""

    number: int
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class StoredPart:
    """A part storage holds already (``GET /uploads/{id}/parts``)."""

    number: int
    etag: str
    size: int
    sha256: str | None


@dataclass(frozen=True)
class StoredParts:
    part_size: int
    part_count: int
    parts: list[StoredPart]


@dataclass(frozen=True)
class DownloadUrl:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Event:
    """A CloudEvent about a file, as the WebSocket carries it (``raw``: its JSON)."""

    id: str
    type: str
    time: datetime | None
    file_id: str
    status: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Event:
        body = data.get("data") or {}
        return cls(
            id=str(data.get("id", "")),
            type=str(data.get("type", "")),
            time=_time(data.get("time")),
            file_id=str(data.get("subject") or body.get("file_id", "")),
            status=body.get("status"),
            raw=data,
        )
