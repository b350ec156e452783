"""The requests ``@uppy/aws-s3`` 5.1.0 sends with ``endpoint`` set, byte for byte where it matters.

Read in its source (``src/index.ts``, ``src/HTTPCommunicationQueue.ts``) and in
``@uppy/companion-client`` 5.1.1 (``src/RequestClient.ts``): every call is ``<endpoint>/<path>``
with ``Accept: application/json`` and the ``headers`` option; a call with a body adds
``Content-Type: application/json``; ``uploadId`` and ``key`` are ``encodeURIComponent``-ed;
metadata goes as ``metadata[<k>]`` query parameters to ``s3/params`` and as an object to
``s3/multipart``. A single file is a form POST of ``fields`` and then ``file``; parts are PUT with
the signed ``headers``; each upload's ``ETag`` response header is required.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import requests

VERSION = "5.1.0"
MIB = 1024**2
UPPY_PART_SIZE = 5 * MIB
"""Uppy's part size below 50 GB: ``max(ceil(size / 10000), 5 MiB)``."""


def encode_uri_component(value: str) -> str:
    return quote(value, safe="-_.!~*'()")


class Uppy:
    """Companion calls as the plugin makes them, to ``endpoint`` with ``Bearer token``."""

    def __init__(self, endpoint: str, token: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, data: dict[str, Any] | None = None) -> requests.Response:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        body = json.dumps(data) if data is not None else None
        return requests.request(
            method, f"{self.endpoint}/{path}", data=body, headers=headers, timeout=60
        )

    def params(self, name: str, type: str, meta: dict[str, str]) -> requests.Response:
        query = {"filename": name, "type": type, **{f"metadata[{k}]": v for k, v in meta.items()}}
        return self.call("GET", f"s3/params?{urlencode(query)}")

    def create(self, name: str, type: str, meta: dict[str, str]) -> requests.Response:
        return self.call("POST", "s3/multipart", {"filename": name, "type": type, "metadata": meta})

    def list_parts(self, upload_id: str, key: str) -> requests.Response:
        return self.call("GET", f"s3/multipart/{self._upload(upload_id, key)}")

    def sign_part(self, upload_id: str, key: str, number: int) -> requests.Response:
        path = f"s3/multipart/{encode_uri_component(upload_id)}/{number}"
        return self.call("GET", f"{path}?key={encode_uri_component(key)}")

    def complete(self, upload_id: str, key: str, parts: list[dict[str, Any]]) -> requests.Response:
        path = f"s3/multipart/{encode_uri_component(upload_id)}/complete"
        sent = [{"ETag": p["ETag"], "PartNumber": p["PartNumber"]} for p in parts]
        return self.call("POST", f"{path}?key={encode_uri_component(key)}", {"parts": sent})

    def abort(self, upload_id: str, key: str) -> requests.Response:
        return self.call("DELETE", f"s3/multipart/{self._upload(upload_id, key)}")

    def _upload(self, upload_id: str, key: str) -> str:
        return f"{encode_uri_component(upload_id)}?key={encode_uri_component(key)}"


def meta_of(name: str, type: str, **more: str) -> dict[str, str]:
    """Uppy's ``file.meta`` as sent (``allowedMetaFields: true``): ``name``, ``type`` and more."""
    return {"name": name, "type": type, **more}


def form_post(signature: dict[str, Any], name: str, data: bytes) -> requests.Response:
    """The plugin's non-multipart upload: ``fields`` in order, then the part ``file``."""
    files = [*((k, (None, v)) for k, v in signature["fields"].items()), ("file", (name, data))]
    return requests.post(signature["url"], files=files, headers=signature["headers"], timeout=60)


def put_parts(uppy: Uppy, upload_id: str, key: str, data: bytes) -> list[dict[str, Any]]:
    """Sign and PUT each ``UPPY_PART_SIZE`` chunk (the last may be shorter); ``{PartNumber,
    ETag}`` of each, as the plugin collects them."""
    parts = []
    for index, offset in enumerate(range(0, len(data), UPPY_PART_SIZE)):
        signed = uppy.sign_part(upload_id, key, index + 1)
        assert signed.status_code == 200, signed.text
        signature = signed.json()
        chunk = data[offset : offset + UPPY_PART_SIZE]
        put = requests.request(
            signature.get("method", "PUT"),
            signature["url"],
            data=chunk,
            headers=signature.get("headers") or {},
            timeout=60,
        )
        assert put.status_code == 200, put.text
        parts.append({"PartNumber": index + 1, "ETag": put.headers["ETag"]})
    return parts
