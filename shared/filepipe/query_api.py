"""The query function's HTTP API: ``GET /files``, ``GET /files/{id}``, ``GET /files/{id}/logs``.

Every route authenticates the caller and sees only its tenant's files (another tenant's file is
a 404). ``GET /files`` pages newest first with signed keyset cursors (``filepipe.cursors``);
``GET /files/{id}`` is served cache-aside from Redis (``filepipe.cache``: a hit costs one Redis
round trip, API key included) with an ETag from the file's id and version, so ``If-None-Match``
answers 304. Unknown or repeated query parameters are a 400 on every route. The API's document
is served at ``GET /openapi.json``.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from flask import Request, Response

from filepipe import runtime
from filepipe.auth import authenticate, bearer_token, hash_key
from filepipe.cache import Lookup, ReadCache
from filepipe.cursors import CursorCodec, Position, codec_for, scope_digest
from filepipe.errors import BadRequest, NotFound
from filepipe.file_queries import file_logs, get_file, list_files
from filepipe.http import Routes, json_response
from filepipe.openapi import serve_openapi
from filepipe.query_params import parse_file_id, parse_list_query, refuse_parameters
from filepipe.runtime import Runtime
from filepipe.uploads import file_representation

CACHE_CONTROL = "private, no-cache"
"""Answers are per tenant; clients may keep them but revalidate (ETag) before reuse."""


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


def _authenticate(
    services: _Services, request: Request, file_id: uuid.UUID | None = None
) -> tuple[str, Lookup]:
    """The caller's tenant (from the cache, else PostgreSQL) and what the cache has of the file."""
    token = bearer_token(request.headers.get("Authorization"))
    key_hash = hash_key(token)
    cached = services.cache.lookup(key_hash, file_id)
    if cached.key_tenant is not None:
        return cached.key_tenant, cached
    tenant = authenticate(services.runtime.pool, token)
    services.cache.store_key(key_hash, tenant)
    return tenant, cached


def _file_id(services: _Services, request: Request, file_id: str) -> uuid.UUID:
    """The path's file id; a bad one is a 400, but only for an authenticated caller."""
    try:
        return parse_file_id(file_id)
    except BadRequest:
        _authenticate(services, request)
        raise


def get_files(request: Request) -> Response:
    services = _current()
    tenant, _ = _authenticate(services, request)
    query = parse_list_query(request.args)
    scope = scope_digest(tenant, query.filters.canonical())
    after = services.cursors.decode(query.cursor, scope) if query.cursor else None
    with services.runtime.pool.connection() as conn:
        rows = list_files(conn, tenant, query.filters, limit=query.limit + 1, after=after)
    page = rows[: query.limit]
    next_cursor = None
    if len(rows) > query.limit:
        last = page[-1]
        next_cursor = services.cursors.encode(Position(last["created_at"], last["id"]), scope)
    return json_response(
        {"items": [file_representation(row) for row in page], "next_cursor": next_cursor},
        headers={"Cache-Control": CACHE_CONTROL},
    )


def get_file_by_id(request: Request, file_id: str) -> Response:
    services = _current()
    uid = _file_id(services, request, file_id)
    tenant, cached = _authenticate(services, request, uid)
    refuse_parameters(request.args)
    if cached.file is not None:
        # Another tenant's cached file gets the same answer as a missing one.
        file = cached.file if cached.file_tenant == tenant else None
    else:
        with services.runtime.pool.connection() as conn:
            row = get_file(conn, tenant, uid)
        file = file_representation(row) if row is not None else None
        if file is not None and cached.guard is not None:
            services.cache.store_file(uid, tenant, file, cached.guard)
    if file is None:
        raise NotFound(f"no file {file_id}")
    tag = etag(file)
    headers = {"ETag": f'"{tag}"', "Cache-Control": CACHE_CONTROL}
    if request.if_none_match.contains_weak(tag):
        return Response(status=304, headers=headers)
    return json_response(file, headers=headers)


def get_file_logs(request: Request, file_id: str) -> Response:
    services = _current()
    uid = _file_id(services, request, file_id)
    tenant, _ = _authenticate(services, request)
    refuse_parameters(request.args)
    with services.runtime.pool.connection() as conn:
        rows = file_logs(conn, tenant, uid)
    if rows is None:
        raise NotFound(f"no file {file_id}")
    return json_response(
        {"file_id": str(uid), "items": [_log_entry(row) for row in rows]},
        headers={"Cache-Control": CACHE_CONTROL},
    )


def etag(file: dict[str, Any]) -> str:
    """The entity tag of a file representation: its id and version (bumped by every change)."""
    return f"{file['id']}.v{file['version']}"


def _log_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "from_status": row["from_status"],
        "to_status": row["to_status"],
        "message": row["message"],
        "trace_id": row["trace_id"],
        "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
    }


ROUTES: Routes = {
    ("GET", "/files"): get_files,
    ("GET", "/files/{file_id}"): get_file_by_id,
    ("GET", "/files/{file_id}/logs"): get_file_logs,
    ("GET", "/openapi.json"): serve_openapi,
}
