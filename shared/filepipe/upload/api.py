"""The presign function's HTTP API: ``POST /uploads``, the multipart routes under
``/uploads/{id}``, Companion's S3 routes under ``/s3`` (``filepipe.upload.companion``) and the
function's document, ``GET /openapi.json``."""

from __future__ import annotations

import uuid

from flask import Request, Response

from filepipe import auth, metrics, openapi, runtime
from filepipe.upload import companion, parts
from filepipe.upload.create import create_upload
from filepipe.upload.multipart import (
    MAX_PARTS,
    check_part_numbers,
    parse_completion,
    parse_part_request,
    plan,
)
from filepipe.upload.request import parse_upload_request, validate_idempotency_key
from filepipe.web import Api, Route, json_body, json_response


def post_upload(request: Request, tenant: str) -> Response:
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
    created = create_upload(rt, tenant, upload_request, idempotency_key, part_plan)
    headers = {"Location": f"/files/{created.body['id']}"}
    if created.replayed:
        headers["Idempotency-Replayed"] = "true"
    metrics.get().uploads_requested.labels(str(created.replayed).lower()).inc()
    return json_response(created.body, status=201, headers=headers)


def post_parts(request: Request, tenant: str, id: uuid.UUID) -> Response:
    part_request = parse_part_request(json_body(request))
    rt = runtime.current()
    file = parts.load(rt, tenant, id)
    part_plan = parts.plan_of(file)
    check_part_numbers(part_request, part_plan.part_count if part_plan else MAX_PARTS)
    return json_response(parts.presign(rt, file, part_request))


def get_parts(request: Request, tenant: str, id: uuid.UUID) -> Response:
    rt = runtime.current()
    return json_response(parts.listing(rt, parts.load(rt, tenant, id)))


def post_complete(request: Request, tenant: str, id: uuid.UUID) -> Response:
    completion = parse_completion(json_body(request))
    rt = runtime.current()
    return json_response(parts.complete(rt, parts.load(rt, tenant, id), completion))


def delete_upload(request: Request, tenant: str, id: uuid.UUID) -> Response:
    rt = runtime.current()
    parts.abort(rt, parts.load(rt, tenant, id))
    return Response(status=204)


def get_s3_params(request: Request, tenant: str) -> Response:
    return json_response(companion.params(runtime.current(), tenant, request.args))


def post_s3_multipart(request: Request, tenant: str) -> Response:
    return json_response(companion.start(runtime.current(), tenant, json_body(request)))


def get_s3_parts(request: Request, tenant: str, uploadId: str) -> Response:
    key = request.args.get("key")
    return json_response(companion.list_parts(runtime.current(), tenant, uploadId, key))


def get_s3_part(
    request: Request,
    tenant: str,
    uploadId: str,
    partNumber: str,
) -> Response:
    key = request.args.get("key")
    return json_response(companion.sign_part(runtime.current(), tenant, uploadId, partNumber, key))


def post_s3_complete(request: Request, tenant: str, uploadId: str) -> Response:
    rt, key = runtime.current(), request.args.get("key")
    return json_response(companion.complete(rt, tenant, uploadId, key, json_body(request)))


def delete_s3_upload(request: Request, tenant: str, uploadId: str) -> Response:
    key = request.args.get("key")
    return json_response(companion.abort(runtime.current(), tenant, uploadId, key))


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
    ),
    Route("POST", "/s3/multipart", post_s3_multipart),
    Route("GET", "/s3/multipart/{uploadId}", get_s3_parts, query=_KEY, segments=_UPLOAD),
    Route(
        "GET",
        "/s3/multipart/{uploadId}/{partNumber}",
        get_s3_part,
        query=_KEY,
        segments=_UPLOAD | {"partNumber"},
    ),
    Route(
        "POST",
        "/s3/multipart/{uploadId}/complete",
        post_s3_complete,
        query=_KEY,
        segments=_UPLOAD,
    ),
    Route("DELETE", "/s3/multipart/{uploadId}", delete_s3_upload, query=_KEY, segments=_UPLOAD),
]
"""Companion's routes, as ``@uppy/aws-s3`` calls them (names as Companion spells them)."""

api = Api(
    [
        Route("POST", "/uploads", post_upload),
        Route("POST", "/uploads/{id}/parts", post_parts),
        Route("GET", "/uploads/{id}/parts", get_parts),
        Route("POST", "/uploads/{id}/complete", post_complete),
        Route("DELETE", "/uploads/{id}", delete_upload),
        *_S3_ROUTES,
        Route("GET", "/openapi.json", lambda request: openapi.response("presign"), public=True),
    ],
    authenticate=_authenticate,
)
