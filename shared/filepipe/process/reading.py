"""Reading an uploaded object once, in constant memory, telling a gone object from an outage.

``opened`` issues the GetObject: storage answering that the key holds no object is
``ObjectMissing`` (permanent: the file becomes MISSING), storage not answering or failing is
``StorageUnavailable`` (transient: the broker retries). ``read_object`` streams the body through
``inspection`` (read ahead by a thread while the previous chunk is hashed) and checks that every
byte arrived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from opentelemetry import trace
from opentelemetry.trace import Span

from filepipe import mediatypes, telemetry
from filepipe.errors import DependencyError, FilepipeError
from filepipe.files.model import FileRow
from filepipe.process.inspection import Inspection, inspect, is_textual, prefetch
from filepipe.storage import is_absent, readinto_of

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import GetObjectOutputTypeDef

CHUNK_BYTES = 1024 * 1024


class StorageUnavailable(DependencyError):
    """The object could not be read; retrying later may succeed."""


class ObjectMissing(FilepipeError):
    """The object no longer exists in storage: permanent, the file becomes MISSING."""


def where(file: FileRow) -> str:
    return f"s3://{file.bucket}/{file.key}"


@dataclass(frozen=True)
class OpenObject:
    """A GetObject answer whose body is still to read, and the span of reading it."""

    response: GetObjectOutputTypeDef
    span: Span


@contextmanager
def opened(s3: S3Client, file: FileRow) -> Iterator[OpenObject]:
    """GetObject for ``file`` (``ObjectMissing`` or ``StorageUnavailable``); the body is closed
    when the block ends. The "read object" span lasts as long as the object is open, but only
    GetObject and the streaming run in it (status changes meanwhile stay the caller's)."""
    attributes = {"filepipe.bucket": file.bucket, "filepipe.key": file.key}
    span = telemetry.tracer().start_span("read object", attributes=attributes)
    try:
        with trace.use_span(span):
            response = _get(s3, file)
        try:
            yield OpenObject(response, span)
        finally:
            response["Body"].close()
    finally:
        span.end()


def _get(s3: S3Client, file: FileRow) -> GetObjectOutputTypeDef:
    try:
        return s3.get_object(Bucket=file.bucket, Key=file.key)
    except ClientError as exc:
        if is_absent(exc):
            raise ObjectMissing(f"{where(file)} no longer exists") from exc
        raise StorageUnavailable(f"cannot read {where(file)}: {exc}") from exc
    except (BotoCoreError, OSError) as exc:
        cause = f"{type(exc).__name__}: {exc}"
        raise StorageUnavailable(f"cannot read {where(file)}: {cause}") from exc


def read_object(
    file: FileRow, obj: OpenObject, *, limit: int, on_chunk: Callable[[], None]
) -> tuple[Inspection, str]:
    """Inspect the opened object (reading stops past ``limit`` or the declared size, whichever
    is lower); returns the inspection and the object's ETag. ``on_chunk`` runs after each chunk
    (the lock's check)."""
    if file.declared_size is not None:  # an upload of unknown size: the limit alone
        limit = min(file.declared_size, limit)
    with trace.use_span(obj.span):
        inspection = _stream(file, obj.response, limit=limit, on_chunk=on_chunk)
    obj.span.set_attribute("filepipe.size", inspection.size)
    return inspection, str(obj.response.get("ETag", "")).strip('"')


def _stream(
    file: FileRow, obj: GetObjectOutputTypeDef, *, limit: int, on_chunk: Callable[[], None]
) -> Inspection:
    chunks = prefetch(readinto_of(obj["Body"]), chunk_size=CHUNK_BYTES)
    try:
        textual = is_textual(mediatypes.essence(file.declared_content_type))
        inspection = inspect(chunks, limit=limit, on_chunk=on_chunk, text=textual)
    except (ClientError, BotoCoreError, OSError) as exc:
        raise StorageUnavailable(f"cannot read {where(file)}: {type(exc).__name__}: {exc}") from exc
    finally:
        chunks.close()
    if not inspection.truncated and inspection.size != obj["ContentLength"]:
        raise StorageUnavailable(
            f"read {inspection.size} of {obj['ContentLength']} bytes of {where(file)}; retrying"
        )
    return inspection
