"""The presign function's HTTP API: ``POST /uploads``, the multipart routes under
``/uploads/{id}``, Companion's S3 routes under ``/s3`` (``filepipe.upload.companion``),
``POST /upload-tokens`` and the function's document, ``GET /openapi.json``.

The upload routes and Companion's take an upload token as well as an API key
(``filepipe.web.routing``); with a token, the multipart routes see only the files it made."""

from __future__ import annotations

import uuid

from flask import Request, Response

from filepipe import auth, metrics, openapi, runtime
from filepipe.upload import companion, parts, tokens
from filepipe.upload.create import create_upload
from filepipe.upload.multipart import (
    MAX_PARTS,
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
    assert upload_request.size is not None, "parsed with its size"
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
    part_plan = parts.plan_of(file)
    check_part_numbers(part_request, part_plan.part_count if part_plan else MAX_PARTS)
    return json_response(parts.presign(rt, file, part_request))


def get_parts(request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID) -> Response:
    rt = runtime.current()
    return json_response(parts.listing(rt, parts.load(rt, tenant, id, token)))


def post_complete(
    request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID
) -> Response:
    completion = parse_completion(json_body(request))
    rt = runtime.current()
    file = parts.load(rt, tenant, id, token)
    return json_response(parts.complete(rt, file, completion, token))


def delete_upload(
    request: Request, tenant: str, token: UploadToken | None, id: uuid.UUID
) -> Response:
    rt = runtime.current()
    parts.abort(rt, parts.load(rt, tenant, id, token))
    return Response(status=204)


def get_s3_params(request: Request, tenant: str, token: UploadToken | None) -> Response:
    return json_response(companion.params(runtime.current(), tenant, token, request.args))


def post_s3_multipart(request: Request, tenant: str, token: UploadToken | None) -> Response:
    return json_response(companion.start(runtime.current(), tenant, token, json_body(request)))


def get_s3_parts(
    request: Request, tenant: str, token: UploadToken | None, uploadId: str
) -> Response:
    key = request.args.get("key")
    return json_response(companion.list_parts(runtime.current(), tenant, token, uploadId, key))


def get_s3_part(
    request: Request,
    tenant: str,
    token: UploadToken | None,
    uploadId: str,
    partNumber: str,
) -> Response:
    rt, key = runtime.current(), request.args.get("key")
    return json_response(companion.sign_part(rt, tenant, token, uploadId, partNumber, key))


def post_s3_complete(
    request: Request, tenant: str, token: UploadToken | None, uploadId: str
) -> Response:
    rt, key = runtime.current(), request.args.get("key")
    return json_response(companion.complete(rt, tenant, token, uploadId, key, json_body(request)))


def delete_s3_upload(
    request: Request, tenant: str, token: UploadToken | None, uploadId: str
) -> Response:
    key = request.args.get("key")
    return json_response(companion.abort(runtime.current(), tenant, token, uploadId, key))


def post_upload_token(request: Request, tenant: str) -> Response:
    settings = runtime.current().settings
    minted = tokens.mint(settings, tenant, tokens.parse_token_request(json_body(request), settings))
    return json_response(minted, status=201, headers={"Cache-Control": NO_STORE})


def _authenticate(request: Request) -> str:
    return auth.from_header(runtime.current().pool, request.headers.get("Authorization"))


_KEY = frozenset({"key"})
_UPLOAD = frozenset({"uploadId"})
_S3_ROUTES = [
    Route(
        "GET",
        "/s3/params",
        get_s3_params,
        query=frozenset({"filename", "type"}),
        query_prefixes=(companion.METADATA_PREFIX,),
        upload_tokens=True,
    ),
    Route("POST", "/s3/multipart", post_s3_multipart, upload_tokens=True),
    Route(
        "GET",
        "/s3/multipart/{uploadId}",
        get_s3_parts,
        query=_KEY,
        segments=_UPLOAD,
        upload_tokens=True,
    ),
    Route(
        "GET",
        "/s3/multipart/{uploadId}/{partNumber}",
        get_s3_part,
        query=_KEY,
        segments=_UPLOAD | {"partNumber"},
        upload_tokens=True,
    ),
    Route(
        "POST",
        "/s3/multipart/{uploadId}/complete",
        post_s3_complete,
        query=_KEY,
        segments=_UPLOAD,
        upload_tokens=True,
    ),
    Route(
        "DELETE",
        "/s3/multipart/{uploadId}",
        delete_s3_upload,
        query=_KEY,
        segments=_UPLOAD,
        upload_tokens=True,
    ),
]
"""Companion's routes, as ``@uppy/aws-s3`` calls them (names as Companion spells them)."""

api = Api(
    [
        Route("POST", "/uploads", post_upload, upload_tokens=True),
        Route("POST", "/uploads/{id}/parts", post_parts, upload_tokens=True),
        Route("GET", "/uploads/{id}/parts", get_parts, upload_tokens=True),
        Route("POST", "/uploads/{id}/complete", post_complete, upload_tokens=True),
        Route("DELETE", "/uploads/{id}", delete_upload, upload_tokens=True),
        *_S3_ROUTES,
        Route("POST", "/upload-tokens", post_upload_token),
        Route("GET", "/openapi.json", lambda request: openapi.response("presign"), public=True),
    ],
    authenticate=_authenticate,
)
