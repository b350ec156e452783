"""Multipart uploads through the real presign function: create, presign parts, PUT them to the
local S3 over HTTP, list and complete."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import requests
from flask.testing import FlaskClient

MIB = 1024**2
PART_SIZE = 5 * MIB


def pdf_bytes(size: int, seed: bytes = b"multipart") -> bytes:
    """``size`` bytes that sniff as a PDF (header, filler, trailer)."""
    head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
    filler = hashlib.sha256(seed).hexdigest().encode() * (size // 64 + 1)
    return head + filler[: size - len(head) - len(tail)] + tail


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create(client: FlaskClient, key: str, data: bytes, **fields: Any) -> Any:
    """``POST /uploads`` for ``data`` as a multipart upload of ``PART_SIZE`` parts (the response);
    ``fields`` override the body (None drops one)."""
    body = {
        "filename": "big.pdf",
        "content_type": "application/pdf",
        "size": len(data),
        "multipart": True,
        "part_size": PART_SIZE,
        **fields,
    }
    return client.post(
        "/uploads", json={k: v for k, v in body.items() if v is not None}, headers=auth(key)
    )


def created(client: FlaskClient, key: str, data: bytes, **fields: Any) -> dict[str, Any]:
    response = create(client, key, data, **fields)
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def presign(
    client: FlaskClient, key: str, file_id: str, numbers: Iterable[int], **body: Any
) -> Any:
    return client.post(
        f"/uploads/{file_id}/parts", json={"part_numbers": list(numbers), **body}, headers=auth(key)
    )


def chunk(data: bytes, number: int, part_size: int = PART_SIZE) -> bytes:
    return data[(number - 1) * part_size : number * part_size]


def put_part(part: dict[str, Any], body: bytes, **headers: str) -> requests.Response:
    """PUT ``body`` to a presigned part URL with its signed headers (``headers`` override)."""
    sent = {**part["headers"], **headers}
    return requests.put(part["url"], data=body, headers=sent, timeout=60)


def upload_parts(
    client: FlaskClient, key: str, file_id: str, data: bytes, numbers: Iterable[int]
) -> dict[int, str]:
    """Presign and PUT parts ``numbers`` of ``data`` (with their digests); their ETags."""
    numbers = list(numbers)
    digests = {str(n): hashlib.sha256(chunk(data, n)).hexdigest() for n in numbers}
    answer = presign(client, key, file_id, numbers, sha256=digests)
    assert answer.status_code == 200, answer.get_json()
    etags = {}
    for part in answer.get_json()["parts"]:
        response = put_part(part, chunk(data, part["number"]))
        assert response.status_code == 200, response.text
        etags[part["number"]] = response.headers["ETag"]
    return etags


def stored_parts(client: FlaskClient, key: str, file_id: str) -> Any:
    return client.get(f"/uploads/{file_id}/parts", headers=auth(key))


def complete(
    client: FlaskClient, key: str, file_id: str, etags: dict[int, str], **body: Any
) -> Any:
    parts = [{"number": n, "etag": etags[n]} for n in sorted(etags)]
    return client.post(
        f"/uploads/{file_id}/complete", json={"parts": parts, **body}, headers=auth(key)
    )


def abort(client: FlaskClient, key: str, file_id: str) -> Any:
    return client.delete(f"/uploads/{file_id}", headers=auth(key))
