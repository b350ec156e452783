"""The presign function's HTTP API: ``POST /uploads`` (and its document, ``GET /openapi.json``)."""

from __future__ import annotations

from flask import Request, Response

from filepipe import metrics, runtime
from filepipe.auth import authenticate, bearer_token
from filepipe.http import Routes, json_body, json_response
from filepipe.openapi import serve_openapi
from filepipe.upload_request import parse_upload_request, validate_idempotency_key
from filepipe.uploads import create_upload


def post_upload(request: Request) -> Response:
    rt = runtime.current()
    tenant = authenticate(rt.pool, bearer_token(request.headers.get("Authorization")))
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


ROUTES: Routes = {("POST", "/uploads"): post_upload, ("GET", "/openapi.json"): serve_openapi}
