"""The presign function's HTTP API: ``POST /uploads`` and its document, ``GET /openapi.json``."""

from __future__ import annotations

from flask import Request, Response

from filepipe import auth, metrics, openapi, runtime
from filepipe.upload.create import create_upload
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
    created = create_upload(rt, tenant, upload_request, idempotency_key)
    headers = {"Location": f"/files/{created.body['id']}"}
    if created.replayed:
        headers["Idempotency-Replayed"] = "true"
    metrics.get().uploads_requested.labels(str(created.replayed).lower()).inc()
    return json_response(created.body, status=201, headers=headers)


def _authenticate(request: Request) -> str:
    return auth.from_header(runtime.current().pool, request.headers.get("Authorization"))


api = Api(
    [
        Route("POST", "/uploads", post_upload),
        Route("GET", "/openapi.json", lambda request: openapi.response("presign"), public=True),
    ],
    authenticate=_authenticate,
)
