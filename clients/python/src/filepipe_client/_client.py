"""``Client``: filepipe's HTTP API, one method per route, with retries.

Connection failures, 5xx and 429 are tried again (``Backoff``; a 429's or 503's ``Retry-After``
is honoured); every request is safe to repeat (``POST /uploads`` carries an Idempotency-Key).
What still fails is raised as one of ``filepipe_client._errors``. Presigned storage requests go
through a second ``httpx.Client`` that sends no API key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx

from filepipe_client._config import Config
from filepipe_client._errors import ConnectionFailed, StorageError, api_error
from filepipe_client._models import (
    CreatedUpload,
    DownloadUrl,
    File,
    Page,
    PartUrl,
    StoredPart,
    StoredParts,
)
from filepipe_client._retry import RETRIED_STATUSES, Backoff

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
COMPLETION_TIMEOUT = httpx.Timeout(300.0, connect=10.0)
"""Completing a multipart upload answers once storage has assembled the whole object."""
USER_AGENT = "filepipe-client/0.1"


class Client:
    """filepipe's API at ``config.url`` with ``config.api_key``.

    ``transport`` replaces httpx's (tests); ``sleep`` is what waits between retries.
    """

    def __init__(
        self,
        config: Config,
        *,
        backoff: Backoff | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self._api = httpx.Client(
            base_url=config.url,
            headers={"Authorization": f"Bearer {config.api_key}", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )
        self._storage = httpx.Client(
            headers={"User-Agent": USER_AGENT}, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()
        self._storage.close()

    # Uploads (the presign function)

    def create_upload(
        self, body: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CreatedUpload:
        """``POST /uploads``: a PENDING file and how to upload it."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = self._call("POST", "/uploads", json=dict(body), headers=headers)
        replayed = response.headers.get("Idempotency-Replayed") == "true"
        return CreatedUpload.from_json(response.json(), replayed=replayed)

    def part_urls(self, file_id: str, sha256: Mapping[int, str]) -> list[PartUrl]:
        """``POST /uploads/{id}/parts``: a presigned UploadPart per part number (the keys of
        ``sha256``, each with its part's hex digest, which storage then checks)."""
        body = {
            "part_numbers": sorted(sha256),
            "sha256": {str(number): digest for number, digest in sha256.items()},
        }
        answer = self._call("POST", f"/uploads/{file_id}/parts", json=body).json()
        return [
            PartUrl(int(p["number"]), str(p["url"]), dict(p["headers"])) for p in answer["parts"]
        ]

    def stored_parts(self, file_id: str) -> StoredParts:
        """``GET /uploads/{id}/parts``: the parts storage holds already."""
        answer = self._call("GET", f"/uploads/{file_id}/parts").json()
        parts = [
            StoredPart(int(p["number"]), str(p["etag"]), int(p["size"]), p.get("sha256"))
            for p in answer["parts"]
        ]
        return StoredParts(int(answer["part_size"]), int(answer["part_count"]), parts)

    def complete_upload(
        self, file_id: str, etags: Mapping[int, str], sha256: str | None = None
    ) -> File:
        """``POST /uploads/{id}/complete`` with every part's etag (and the whole SHA-256)."""
        body: dict[str, Any] = {
            "parts": [{"number": number, "etag": etags[number]} for number in sorted(etags)]
        }
        if sha256 is not None:
            body["sha256"] = sha256
        answer = self._call(
            "POST", f"/uploads/{file_id}/complete", json=body, timeout=COMPLETION_TIMEOUT
        )
        return File.from_json(answer.json())

    def abort_upload(self, file_id: str) -> None:
        """``DELETE /uploads/{id}``: the multipart upload is aborted, the file CANCELLED."""
        self._call("DELETE", f"/uploads/{file_id}")

    # Files (the query function)

    def get_file(self, file_id: str) -> File:
        return File.from_json(self._call("GET", f"/files/{file_id}").json())

    def list_files(
        self, *, limit: int | None = None, cursor: str | None = None, **filters: str | None
    ) -> Page:
        """``GET /files``, newest first; ``filters``: status, content_type, filename, sha256,
        created_after, created_before."""
        params = {k: v for k, v in filters.items() if v is not None}
        if limit is not None:
            params["limit"] = str(limit)
        if cursor is not None:
            params["cursor"] = cursor
        answer = self._call("GET", "/files", params=params).json()
        return Page([File.from_json(item) for item in answer["items"]], answer["next_cursor"])

    def iter_files(self, *, limit: int | None = None, **filters: str | None) -> Iterator[File]:
        """Every file matching ``filters``, page after page (``limit`` per page)."""
        cursor = None
        while True:
            page = self.list_files(limit=limit, cursor=cursor, **filters)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def download_url(self, file_id: str) -> DownloadUrl:
        """``GET /files/{id}/download``: a short-lived URL (only for a PROCESSED file)."""
        answer = self._call("GET", f"/files/{file_id}/download").json()
        return DownloadUrl(str(answer["url"]), datetime.fromisoformat(str(answer["expires_at"])))

    def delete_file(self, file_id: str) -> None:
        """``DELETE /files/{id}``: the object is removed, the file DELETED."""
        self._call("DELETE", f"/files/{file_id}")

    def wait(self, file_id: str, *, timeout: float | None = None, interval: float = 0.2) -> File:
        """Poll ``GET /files/{id}`` (backing off to 2 s) until the file settles; after
        ``timeout`` seconds, the file as it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            file = self.get_file(file_id)
            if file.status.settled or (deadline is not None and time.monotonic() > deadline):
                return file
            self.sleep(interval)
            interval = min(2.0, interval * 1.5)

    # Storage (presigned URLs)

    def put(
        self,
        url: str,
        headers: Mapping[str, str],
        content: Iterable[bytes] | bytes,
        *,
        length: int | None = None,
    ) -> str:
        """PUT ``content`` to a presigned URL; the object's or part's ETag.

        ``length`` is sent as ``Content-Length``, which the URL signs but filepipe does not list
        in ``headers``: give it for streamed ``content`` (httpx would send it chunked, and
        storage refuses a chunked body with 411).
        """
        sent = dict(headers)
        if length is not None:
            sent["Content-Length"] = str(length)
        try:
            response = self._storage.put(url, headers=sent, content=content)
        except httpx.TransportError as exc:
            raise ConnectionFailed(_origin(url), _reason(exc)) from exc
        _check_storage(response)
        return str(response.headers.get("ETag", ""))

    @contextmanager
    def fetch(self, url: str) -> Iterator[httpx.Response]:
        """GET a presigned URL, streamed: read ``iter_bytes()`` of what is yielded."""
        try:
            with self._storage.stream("GET", url) as response:
                if response.is_error:
                    response.read()
                _check_storage(response)
                yield response
        except httpx.TransportError as exc:
            raise ConnectionFailed(_origin(url), _reason(exc)) from exc

    # Plumbing

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        attempt = 0
        while True:
            retry_after = None
            try:
                response = self._api.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.backoff.retries:
                    raise ConnectionFailed(self.config.url, _reason(exc)) from exc
            else:
                if not response.is_error:
                    return response
                if response.status_code not in RETRIED_STATUSES or attempt >= self.backoff.retries:
                    raise api_error(response.status_code, _problem(response), response.text)
                retry_after = response.headers.get("Retry-After")
            self.sleep(self.backoff.delay(attempt, retry_after))
            attempt += 1


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _check_storage(response: httpx.Response) -> None:
    """``StorageError`` with S3's error code and message for an error answer."""
    if not response.is_error:
        return
    text = response.text
    code = _xml_field(text, "Code")
    raise StorageError(response.status_code, code, _xml_field(text, "Message") or text[:200])


def _xml_field(text: str, name: str) -> str:
    start = text.find(f"<{name}>")
    end = text.find(f"</{name}>", start)
    return text[start + len(name) + 2 : end] if start >= 0 and end > start else ""


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__
