"""Objects on disk, so the local S3 keeps them across restarts as MinIO does.

moto keeps every object in its ``FakeKey``'s ``SpooledTemporaryFile`` (memory up to 5 MiB, then
an anonymous temporary file) and offers no persistent store, so a restart of ``make up`` lost
every object while PostgreSQL still pointed at them. ``ObjectStore`` keeps, per bucket, two
files for each object (named by the SHA-256 of its key, so any key name is a safe file name):

- ``<hash>.<generation>.data``: the bytes, copied 1 MiB at a time under the key's lock;
- ``<hash>.json``: what GET and HEAD answer with besides the bytes (ETag, including the ``-N``
  of a multipart object, content type and user metadata, checksums, last modified, storage
  class, encryption) and the name of its data file. Written last (temp file, fsync, rename,
  fsync of the directory), it is what makes the object exist: a crash before leaves the old
  version (or nothing), never half an object.

``save`` runs for every completed write (PUT, POST form, CopyObject, CompleteMultipartUpload)
before the response leaves (``local.s3_notifier``); a deleted object's files are removed by the
hook ``install`` puts on moto's ``delete_object``. ``load`` puts every stored object back into
moto's backend at start-up, adopting its data file as the key's buffer (no copy, no memory).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from moto.s3.models import FakeKey, S3Backend

from local.durable import fsync_directory, sync, write_atomically
from local.s3_large_objects import CHUNK

log = logging.getLogger(__name__)

ATTRIBUTES = (
    "_etag",
    "_storage_class",
    "checksum_algorithm",
    "checksum_value",
    "checksum_type",
    "checksum_parts",
    "encryption",
    "kms_key_id",
    "bucket_key_enabled",
    "website_redirect_location",
    "lock_mode",
    "lock_legal_status",
    "lock_until",
)
"""``FakeKey`` attributes GET and HEAD answer with, kept as they are (JSON values)."""


class ObjectStore:
    """Objects of every bucket under ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, bucket: str, key: FakeKey) -> None:
        """Store ``key``'s bytes and attributes durably (replacing an older version)."""
        folder = self.directory / bucket
        folder.mkdir(exist_ok=True)
        stem = _stem(key.name)
        data = folder / f"{stem}.{time.time_ns()}-{uuid.uuid4().hex[:8]}.data"
        with data.open("wb") as file, key.lock:
            buffer = key._value_buffer
            buffer.seek(0)
            while chunk := buffer.read(CHUNK):
                file.write(chunk)
            sync(file)
        key.etag  # noqa: B018 (computes moto's MD5 into ``_etag`` if it has none yet)
        described = {
            "key": key.name,
            "data": data.name,
            "size": key.size,
            "last_modified": key.last_modified.isoformat(),
            "metadata": dict(key.metadata),
            "attributes": {name: getattr(key, name) for name in ATTRIBUTES},
        }
        write_atomically(folder / f"{stem}.json", json.dumps(described).encode())
        self._remove_data_except(folder, stem, data.name)

    def delete(self, bucket: str, name: str) -> None:
        """Forget ``name`` (nothing if it was never stored)."""
        folder = self.directory / bucket
        stem = _stem(name)
        (folder / f"{stem}.json").unlink(missing_ok=True)
        if folder.is_dir():
            fsync_directory(folder)
            self._remove_data_except(folder, stem, None)

    def load(self, backend: S3Backend, region: str) -> int:
        """Put every stored object back into ``backend``; returns how many."""
        loaded = 0
        for folder in sorted(p for p in self.directory.iterdir() if p.is_dir()):
            if folder.name not in backend.buckets:
                backend.create_bucket(folder.name, region)
            for described in sorted(folder.glob("*.json")):
                try:
                    self._restore(backend, folder, json.loads(described.read_bytes()))
                except (OSError, ValueError, KeyError) as exc:
                    log.error("cannot restore %s/%s: %s", folder.name, described.name, exc)
                    continue
                loaded += 1
            self._remove_orphans(folder)
        return loaded

    def _restore(self, backend: S3Backend, folder: Path, described: dict[str, Any]) -> None:
        data = folder / described["data"]
        if data.stat().st_size != described["size"]:
            raise ValueError(f"{data.name} holds {data.stat().st_size} bytes, not the object's")
        key = backend.put_object(folder.name, described["key"], b"", disable_notification=True)
        with key.lock:
            # moto reads the buffer with seek/read only: the data file itself will do
            cast(Any, key)._value_buffer = data.open("rb")
            key.contentsize = described["size"]
        key.last_modified = datetime.fromisoformat(described["last_modified"])
        key.metadata.clear()
        key.metadata.update(described["metadata"])
        for name, value in described["attributes"].items():
            if name in ATTRIBUTES:
                setattr(key, name, value)

    def _remove_data_except(self, folder: Path, stem: str, keep: str | None) -> None:
        for old in folder.glob(f"{stem}.*.data"):
            if old.name != keep:
                old.unlink(missing_ok=True)

    def _remove_orphans(self, folder: Path) -> None:
        """Data files no description names (a crash between the two writes)."""
        named = set()
        for described in folder.glob("*.json"):
            try:
                named.add(json.loads(described.read_bytes())["data"])
            except (OSError, ValueError, KeyError):
                continue
        for data in folder.glob("*.data"):
            if data.name not in named:
                data.unlink(missing_ok=True)


def install(store: ObjectStore) -> None:
    """Wrap moto's ``delete_object`` so that a deleted object leaves the store too."""
    original = S3Backend.delete_object
    if getattr(original, "filepipe_store", None) is store:
        return
    unwrapped = getattr(original, "__wrapped__", original)

    @functools.wraps(unwrapped)
    def delete_object(
        self: S3Backend, bucket_name: str, key_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        result = unwrapped(self, bucket_name, key_name, *args, **kwargs)
        if not isinstance(self.get_bucket(bucket_name).keys.get(key_name), FakeKey):
            store.delete(bucket_name, key_name)
        return result

    delete_object.filepipe_store = store  # type: ignore[attr-defined]
    S3Backend.delete_object = delete_object  # type: ignore[method-assign]


def _stem(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()
