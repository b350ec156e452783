"""Companion's S3 routes, so Uppy's ``@uppy/aws-s3`` (5.x, with just ``endpoint``) uploads files.

Shapes from the plugin's source (``@uppy/aws-s3`` 5.1.0, ``src/index.ts`` and
``src/HTTPCommunicationQueue.ts``; requests by ``@uppy/companion-client`` 5.1.1, which parses
every 2xx answer as JSON):

- ``GET /s3/params?filename=&type=&metadata[k]=v`` → ``{method: "POST", url, fields, headers}``:
  Uppy posts ``fields`` then the file (the form part ``file``) to ``url`` and reads ``fields.key``;
- ``POST /s3/multipart`` ``{filename, type, metadata}`` → ``{key, uploadId}``;
- ``GET /s3/multipart/{uploadId}?key=`` → ``[{PartNumber, Size, ETag}]``;
- ``GET /s3/multipart/{uploadId}/{partNumber}?key=`` → ``{url, method: "PUT", headers}``;
- ``POST /s3/multipart/{uploadId}/complete?key=`` ``{parts: [{PartNumber, ETag}]}`` →
  ``{location, key}``, ``location`` being the file's ``/files/{id}``;
- ``DELETE /s3/multipart/{uploadId}?key=`` → ``{}``.

Uppy sends no size: a single upload is a form POST whose policy bounds the size to the limit
(``filepipe.storage.presign_post``), a multipart upload one whose parts the client sizes
(``filepipe.upload.parts``). Each creates and advances a file exactly as ``POST /uploads`` and
``/uploads/{id}/...`` do (through ``create`` and ``parts``). ``name`` and ``type`` in Uppy's
metadata repeat ``filename`` and ``type`` and are not kept. ``uploadId`` and ``key`` only find
the caller's file: the key names its id, and the file must be at that key with that UploadId
(and, with an upload token, made with it). Upload tokens are taken as by the native routes: the
same scope, a form POST's ``content-length-range`` and a multipart completion bounded by the
token's ``max_file_bytes``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from filepipe import logs
from filepipe.errors import BadRequest, NotFound
from filepipe.files import store
from filepipe.files.model import FileRow
from filepipe.runtime import Runtime
from filepipe.upload import parts
from filepipe.upload.create import create_upload
from filepipe.upload.multipart import MAX_PARTS, Completion, PartRequest, parse_completion
from filepipe.upload.request import parse_upload_request
from filepipe.upload_tokens import UploadToken
from filepipe.web.routing import parse_bounded_int

METADATA_PREFIX = "metadata["
_NATIVE = {"type": "content_type"}
"""Uppy's names of ``POST /uploads`` fields it names otherwise."""
_REPEATED = frozenset({"name", "type"})
"""Keys of Uppy's metadata that repeat ``filename`` and ``type``."""


def params(
    rt: Runtime, tenant: str, token: UploadToken | None, query: Mapping[str, str]
) -> dict[str, Any]:
    """``GET /s3/params``: a new file and the form POST that uploads it."""
    metadata = {
        name[len(METADATA_PREFIX) : -1]: value
        for name, value in query.items()
        if name.startswith(METADATA_PREFIX) and name.endswith("]")
    }
    malformed = [n for n in query if n.startswith(METADATA_PREFIX) and not n.endswith("]")]
    if malformed:
        errors = [{"field": n[:80], "message": "must be metadata[<key>]"} for n in malformed]
        raise BadRequest("the request's query parameters are invalid", errors=errors)
    native: dict[str, Any] = {"metadata": metadata}
    native.update((_NATIVE.get(n, n), query[n]) for n in ("filename", "type") if n in query)
    upload = _create(rt, tenant, token, native)["upload"]
    return {"method": "POST", "url": upload["url"], "fields": upload["fields"], "headers": {}}


def start(
    rt: Runtime, tenant: str, token: UploadToken | None, body: Mapping[str, Any]
) -> dict[str, Any]:
    """``POST /s3/multipart``: a new file and its multipart upload."""
    unknown = sorted(set(body) - {"filename", "type", "metadata"})
    if unknown:
        errors = [{"field": name[:80], "message": "unknown field"} for name in unknown]
        raise BadRequest("the upload request is invalid", errors=errors)
    native = {_NATIVE.get(name, name): value for name, value in body.items()}
    created = _create(rt, tenant, token, native, parts=True)
    return {"key": created["key"], "uploadId": created["upload"]["upload_id"]}


def list_parts(
    rt: Runtime, tenant: str, token: UploadToken | None, upload_id: str, key: str | None
) -> list[dict[str, Any]]:
    """``GET /s3/multipart/{uploadId}``: the parts storage holds."""
    listing = parts.listing(rt, find(rt, tenant, token, upload_id, key))
    return [
        {"PartNumber": p["number"], "Size": p["size"], "ETag": p["etag"]} for p in listing["parts"]
    ]


def sign_part(
    rt: Runtime,
    tenant: str,
    token: UploadToken | None,
    upload_id: str,
    part_number: str,
    key: str | None,
) -> dict[str, Any]:
    """``GET /s3/multipart/{uploadId}/{partNumber}``: a presigned UploadPart."""
    number = parse_bounded_int(part_number, low=1, high=MAX_PARTS)
    if number is None:
        errors = [{"field": "partNumber", "message": f"must be an integer from 1 to {MAX_PARTS}"}]
        raise BadRequest("the part number is invalid", errors=errors)
    file = find(rt, tenant, token, upload_id, key)
    signed = parts.presign(rt, file, PartRequest((number,), {}))["parts"][0]
    return {"url": signed["url"], "method": signed["method"], "headers": signed["headers"]}


def complete(
    rt: Runtime,
    tenant: str,
    token: UploadToken | None,
    upload_id: str,
    key: str | None,
    body: Mapping[str, Any],
) -> dict[str, Any]:
    """``POST /s3/multipart/{uploadId}/complete``: complete the upload; the file's location."""
    completion = _completion(body)
    file = find(rt, tenant, token, upload_id, key)
    done = parts.complete(rt, file, completion, token)
    return {"location": f"/files/{done['id']}", "key": done["key"]}


def abort(
    rt: Runtime, tenant: str, token: UploadToken | None, upload_id: str, key: str | None
) -> dict[str, Any]:
    """``DELETE /s3/multipart/{uploadId}``: abort the upload, cancel the file."""
    parts.abort(rt, find(rt, tenant, token, upload_id, key))
    return {}


def find(
    rt: Runtime, tenant: str, token: UploadToken | None, upload_id: str, key: str | None
) -> FileRow:
    """The caller's multipart file at ``key`` with ``upload_id``, made with ``token`` if given
    (anything else: a 404)."""
    if key is None:
        errors = [{"field": "key", "message": "required, the object key"}]
        raise BadRequest("the request's query parameters are invalid", errors=errors)
    missing = NotFound(f"no upload {upload_id[:100]} of key {key[:300]}")
    segments = key.split("/")
    try:
        file_id = uuid.UUID(segments[1]) if len(segments) == 3 else None
    except ValueError:
        file_id = None
    file = None
    if file_id is not None:
        with rt.pool.connection() as conn:
            file = store.get(conn, tenant, file_id)
    if file is None or file.key != key or file.upload_id != upload_id:
        raise missing
    if not parts.made_with(file, token):
        raise missing
    logs.bind(file_id=file.id, tenant=tenant)
    return file


def _create(
    rt: Runtime,
    tenant: str,
    token: UploadToken | None,
    body: Mapping[str, Any],
    *,
    parts: bool = False,
) -> dict[str, Any]:
    """The new file of a ``POST /uploads`` body without a size."""
    request = parse_upload_request(
        body,
        max_size=rt.settings.max_upload_bytes,
        allowed_types=rt.settings.allowed_content_types,
        sized=False,
    )
    kept = {key: value for key, value in request.metadata.items() if key not in _REPEATED}
    request = replace(request, metadata=kept)
    return create_upload(rt, tenant, request, token=token, client_parts=parts).body


def _completion(body: Mapping[str, Any]) -> Completion:
    """Uppy's ``{parts: [{PartNumber, ETag}]}`` as a completion (400 if it is not one)."""
    listed = body.get("parts")
    if (
        set(body) != {"parts"}
        or not isinstance(listed, list)
        or not all(isinstance(p, dict) and set(p) == {"PartNumber", "ETag"} for p in listed)
    ):
        message = "required and alone: a list of {PartNumber, ETag}"
        errors = [{"field": "parts", "message": message}]
        raise BadRequest("the completion request is invalid", errors=errors)
    return parse_completion(
        {"parts": [{"number": p["PartNumber"], "etag": p["ETag"]} for p in listed]}
    )
