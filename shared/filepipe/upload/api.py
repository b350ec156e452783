"""The presign function's HTTP API: ``POST /uploads``, the multipart routes under
``/uploads/{id}``, ``POST /upload-tokens`` and the function's document, ``GET /openapi.json``.

The upload routes take an upload token as well as an API key (``filepipe.web.routing``); with a
token, the multipart routes see only the files it made."""

from __future__ import annotations

import uuid

from flask import Request, Response

from filepipe import auth, metrics, openapi, runtime
from filepipe.upload import parts, tokens
from filepipe.upload.create import create_upload
from filepipe.upload.multipart import (
    check_part_numbers,
    parse_completion,
    parse_part_request,
    plan,
)
from filepipe.upload.request import parse_upload_request, validate_idempotency_key
from filepipe.upload_tokens import UploadToken
from filepipe.web import Api, Route, json_body, json_response

NO_STORE = "no-store"
"""A token is a bearer credential: no cache keeps the answer that holds one."""


def post_upload(request: Request, tenant: str, token: UploadToken | None) -> Response:
    rt = runtime.current()
    idempotency_key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
    upload_request = parse_upload_request(
        json_body(request),
        max_size=rt.settings.max_upload_bytes,
        allowed_types=rt.settings.allowed_content_types,
    )
    part_plan = plan(
        upload_request.size,
        multipart=upload_request.multipart,
        part_size=upload_request.part_size,
        threshold=rt.settings.multipart_threshold,
        default_part_size=rt.settings.part_size,
    )
    created = create_upload(rt, tenant, upload_request, idempotency_key, part_plan, token)
    headers = {"Location": f"/files/{created.body['id']}"}
    if created.replayed:
        headers["Idempotency-Replayed"] = "true"
    metrics.get().uploads_requested.labels(str(created.replayed).lower()).inc()
    return json_response(created.body, status=201, headers=headers)


def post_parts(request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID) -> Response:
    part_request = parse_part_request(json_body(request))
    rt = runtime.current()
    file = parts.load(rt, tenant, id, token)
    check_part_numbers(part_request, parts.plan_of(file).part_count)
    return json_response(parts.presign(rt, file, part_request))


def get_parts(request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID) -> Response:
    rt = runtime.current()
    return json_response(parts.listing(rt, parts.load(rt, tenant, id, token)))


def post_complete(
    request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID
) -> Response:
    completion = parse_completion(json_body(request))
    rt = runtime.current()
    return json_response(parts.complete(rt, parts.load(rt, tenant, id, token), completion))


def delete_upload(
    request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID
) -> Response:
    rt = runtime.current()
    parts.abort(rt, parts.load(rt, tenant, id, token))
    return Response(status=204)


def post_upload_token(request: Request, tenant: str) -> Response:
    settings = runtime.current().settings
    minted = tokens.mint(settings, tenant, tokens.parse_token_request(json_body(request), settings))
    return json_response(minted, status=201, headers={"Cache-Control": NO_STORE})


def _authenticate(request: Request) -> str:
    return auth.from_header(runtime.current().pool, request.headers.get("Authorization"))


api = Api(
    [
        Route("POST", "/uploads", post_upload, upload_tokens=True),
        Route("POST", "/uploads/{id}/parts", post_parts, upload_tokens=True),
        Route("GET", "/uploads/{id}/parts", get_parts, upload_tokens=True),
        Route("POST", "/uploads/{id}/complete", post_complete, upload_tokens=True),
        Route("DELETE", "/uploads/{id}", delete_upload, upload_tokens=True),
        Route("POST", "/upload-tokens", post_upload_token),
        Route("GET", "/openapi.json", lambda request: openapi.response("presign"), public=True),
    ],
    authenticate=_authenticate,
)
