"""The presign function's HTTP API: ``POST /uploads``, the multipart routes under
``/uploads/{id}`` and the function's document, ``GET /openapi.json``."""

from __future__ import annotations

import uuid

from flask import Request, Response

from filepipe import auth, metrics, openapi, runtime
from filepipe.upload import parts
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


def _authenticate(request: Request) -> str:
    return auth.from_header(runtime.current().pool, request.headers.get("Authorization"))


api = Api(
    [
        Route("POST", "/uploads", post_upload),
        Route("POST", "/uploads/{id}/parts", post_parts),
        Route("GET", "/uploads/{id}/parts", get_parts),
        Route("POST", "/uploads/{id}/complete", post_complete),
        Route("DELETE", "/uploads/{id}", delete_upload),
        Route("GET", "/openapi.json", lambda request: openapi.response("presign"), public=True),
    ],
    authenticate=_authenticate,
)
