"""Uploading through the real presign function: request the URL, then PUT the bytes."""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from flask.testing import FlaskClient


def request_upload(client: FlaskClient, key: str, data: bytes, **declared: Any) -> dict[str, Any]:
    """``POST /uploads`` declaring ``data`` (overridden by ``declared``; None drops a field)."""
    body = {
        "filename": "doc.pdf",
        "content_type": "application/pdf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **declared,
    }
    response = client.post(
        "/uploads",
        json={k: v for k, v in body.items() if v is not None},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 201, response.get_json()
    result: dict[str, Any] = response.get_json()
    return result


def put(upload: dict[str, Any], data: bytes) -> None:
    """PUT ``data`` to the presigned URL with the headers listed (requests sets the length)."""
    response = requests.put(
        upload["upload"]["url"], data=data, headers=upload["upload"]["headers"], timeout=60
    )
    assert response.status_code == 200, response.text
