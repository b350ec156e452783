"""The query function's HTTP API: ``GET /files``, ``GET /files/{id}``, ``GET /files/{id}/logs``,
``GET /files/{id}/download``, ``DELETE /files/{id}``.

Every route sees only the caller's tenant's files (another tenant's file is a 404). ``GET /files``
pages newest first with signed keyset cursors (``cursors``); ``GET /files/{id}`` is served
cache-aside from Redis (to an upload token, which may read only the files it made and no other
route, straight from PostgreSQL) (``cache``; the API key's tenant is cached too and read with the
file in one round trip, so a hit touches no database and serialises nothing) with an ETag from the
file's id and version, so ``If-None-Match`` answers 304.
``GET /files/{id}/download`` issues a short-lived presigned GET of a PROCESSED file (``download``),
as JSON or, with ``?redirect=true``, as a 302. ``DELETE /files/{id}`` marks the file DELETED and
clears its storage (``delete``), answering 204 every time. ``GET /files`` leaves DELETED files
out unless ``status=DELETED``; ``GET /files/{id}`` still shows them. The API's document is
served at ``GET /openapi.json``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Request, Response, g

from filepipe import auth, openapi, runtime
from filepipe.errors import NotFound
from filepipe.files import representation, store
from filepipe.files.model import FileRow
from filepipe.files.store import Position
from filepipe.query import delete, download
from filepipe.query.cache import CachedFile, Lookup, ReadCache
from filepipe.query.cursors import CursorCodec, codec_for, scope_digest
from filepipe.query.params import PARAMETERS, parse_list_query
from filepipe.runtime import Runtime
from filepipe.upload_tokens import UploadToken
from filepipe.web import Api, Route, json_response
from filepipe.web.bodies import iso

CACHE_CONTROL = "private, no-cache"
"""Answers are per tenant; clients may keep them but revalidate (ETag) before reuse."""
_FILE_PATH = "/files/"
NO_STORE = "no-store"
"""Download answers carry a bearer URL: no cache keeps them."""


@dataclass(frozen=True)
class _Services:
    runtime: Runtime
    cache: ReadCache
    cursors: CursorCodec


_services: _Services | None = None
_services_lock = threading.Lock()


def _current() -> _Services:
    """This process's cache and cursor codec, rebuilt whenever the runtime is."""
    global _services
    rt = runtime.current()
    services = _services
    if services is None or services.runtime is not rt:
        with _services_lock:
            services = _services
            if services is None or services.runtime is not rt:
                services = _Services(
                    rt,
                    ReadCache(rt.redis, rt.settings.cache_ttl),
                    codec_for(rt.settings.cursor_secret),
                )
                _services = services
    return services


def _authenticate(request: Request) -> str:
    """The caller's tenant: from the cache, else PostgreSQL (then cached, never past the key's
    expiry). For ``GET /files/{id}`` the file's cache entry comes in the same round trip
    (``_prefetched``)."""
    services = _current()
    token = auth.bearer_token(request.headers.get("Authorization"))
    key_hash = auth.hash_key(token)
    file_id = _requested_file(request)
    if file_id is None:
        tenant = services.cache.key_tenant(key_hash)
    else:
        tenant, lookup = services.cache.read(key_hash, file_id)
        g.filepipe_prefetched = (file_id, lookup)
    if tenant is None:
        asked = time.monotonic()
        credential = auth.identify(services.runtime.pool, token)
        tenant = credential.tenant
        expires_in = credential.expires_in
        if expires_in is not None:
            # Counted from PostgreSQL's reading: the entry must not outlive the key.
            expires_in -= time.monotonic() - asked
        services.cache.store_key(key_hash, tenant, expires_in)
    return tenant


def _requested_file(request: Request) -> uuid.UUID | None:
    """The id of a ``GET /files/{id}`` request (routing checks it again), else ``None``."""
    if request.method != "GET" or not request.path.startswith(_FILE_PATH):
        return None
    try:
        return uuid.UUID(request.path[len(_FILE_PATH) :])
    except ValueError:
        return None


def _prefetched(services: _Services, file_id: uuid.UUID) -> Lookup:
    """The file's cache entry read with the caller's key (``_authenticate``), else read now."""
    prefetched: tuple[uuid.UUID, Lookup] | None = g.pop("filepipe_prefetched", None)
    if prefetched is not None and prefetched[0] == file_id:
        return prefetched[1]
    return services.cache.lookup(file_id)


def get_files(request: Request, tenant: str) -> Response:
    services = _current()
    query = parse_list_query(request.args)
    scope = scope_digest(tenant, query.filters.canonical())
    after = services.cursors.decode(query.cursor, scope) if query.cursor else None
    with services.runtime.pool.connection() as conn:
        files = store.list_page(conn, tenant, query.filters, limit=query.limit + 1, after=after)
    page = files[: query.limit]
    next_cursor = None
    if len(files) > query.limit:
        last = page[-1]
        next_cursor = services.cursors.encode(Position(last.created_at, last.id), scope)
    return json_response(
        {"items": [representation(file) for file in page], "next_cursor": next_cursor},
        headers={"Cache-Control": CACHE_CONTROL},
    )


def get_file(request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID) -> Response:
    services = _current()
    file = _read_file(services, tenant, id) if token is None else _token_file(tenant, id, token)
    if file is None:
        raise NotFound(f"no file {id}")
    headers = {"ETag": f'"{file.etag}"', "Cache-Control": CACHE_CONTROL}
    if request.if_none_match.contains_weak(file.etag):
        return Response(status=304, headers=headers)
    return Response(file.body, mimetype="application/json", headers=headers)


def _read_file(services: _Services, tenant: str, file_id: uuid.UUID) -> CachedFile | None:
    """The tenant's file, through the read cache."""
    cached = _prefetched(services, file_id)
    if cached.file is not None:
        # Another tenant's cached file gets the same answer as a missing one.
        return cached.file if cached.file.tenant == tenant else None
    with services.runtime.pool.connection() as conn:
        row = store.get(conn, tenant, file_id)
    if row is None:
        return None
    file = answer(row)
    if cached.guard is not None:
        services.cache.store_file(file_id, file, cached.guard)
    return file


def _token_file(tenant: str, file_id: uuid.UUID, token: UploadToken) -> CachedFile | None:
    """The file if ``token`` made it (the cache does not know which token made a file)."""
    with _current().runtime.pool.connection() as conn:
        row = store.get(conn, tenant, file_id)
    return answer(row) if row is not None and row.upload_token_id == token.id else None


def get_file_logs(request: Request, tenant: str, id: uuid.UUID) -> Response:
    with _current().runtime.pool.connection() as conn:
        rows = store.logs(conn, tenant, id)
    if rows is None:
        raise NotFound(f"no file {id}")
    return json_response(
        {"file_id": str(id), "items": [_log_entry(row) for row in rows]},
        headers={"Cache-Control": CACHE_CONTROL},
    )


def get_file_download(request: Request, tenant: str, id: uuid.UUID) -> Response:
    redirect = download.wants_redirect(request.args.get("redirect"))
    rt = _current().runtime
    issued = download.issue(rt, tenant, id, expires_in=rt.settings.download_url_expires)
    headers = {"Cache-Control": NO_STORE}
    if redirect:
        return Response(status=302, headers={**headers, "Location": issued.url})
    return json_response({"url": issued.url, "expires_at": iso(issued.expires_at)}, headers=headers)


def delete_file(request: Request, tenant: str, id: uuid.UUID) -> Response:
    delete.delete_file(_current().runtime, tenant, id)
    return Response(status=204)


def answer(row: FileRow) -> CachedFile:
    """A file's answer: its JSON representation, and its entity tag (id and version, bumped by
    every change)."""
    body = json.dumps(representation(row), separators=(",", ":")).encode()
    return CachedFile(row.tenant, f"{row.id}.v{row.version}", body)


def _log_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "from_status": row["from_status"],
        "to_status": row["to_status"],
        "message": row["message"],
        "trace_id": row["trace_id"],
        "created_at": iso(row["created_at"]),
    }


api = Api(
    [
        Route("GET", "/files", get_files, query=PARAMETERS),
        Route("GET", "/files/{id}", get_file, upload_tokens=True),
        Route("DELETE", "/files/{id}", delete_file),
        Route("GET", "/files/{id}/logs", get_file_logs),
        Route("GET", "/files/{id}/download", get_file_download, query=download.PARAMETERS),
        Route("GET", "/openapi.json", lambda request: openapi.response("query"), public=True),
    ],
    authenticate=_authenticate,
)
