"""Sending parts, against an in-process stand-in for the API and storage (httpx transport):
the whole SHA-256 in part order, batches of URLs, a failed part retried alone, stored parts
read but not sent, a changed stored part refused."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import httpx
import pytest

from filepipe_client import Backoff, Client, Config, IntegrityError, StoredPart, plan_parts
from filepipe_client._parts import PartSender, SentParts

PART = 1000
CONTENT = (bytes(range(256)) * 40)[: 7 * PART] + b"tail"
"""Eight parts: seven of ``PART`` bytes and four bytes."""


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Storage:
    """``POST /uploads/f/parts`` and the part PUTs; the first PUT of each of ``failing`` is a
    503, a PUT without its exact ``Content-Length`` (chunked) a 411, as from the local S3.
    Records every request and the most parts ever in flight at once."""

    def __init__(self, failing: Collection[int] = ()) -> None:
        self.failing = set(failing)
        self.batches: list[list[int]] = []
        self.puts: Counter[int] = Counter()
        self.bodies: dict[int, bytes] = {}
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/uploads/f/parts":
            body = json.loads(request.content)
            self.batches.append(body["part_numbers"])
            parts = [
                {"number": n, "method": "PUT", "url": f"http://s3/part/{n}", "headers": {}}
                for n in body["part_numbers"]
            ]
            return httpx.Response(200, json={"parts": parts, "expires_at": "2030-01-01T00:00:00Z"})
        number = int(request.url.path.rsplit("/", 1)[1])
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        data = request.read()
        with self.lock:
            self.in_flight -= 1
            if request.headers.get("Content-Length") != str(len(data)):
                return httpx.Response(411, text="<Error><Code>MissingContentLength</Code></Error>")
            self.puts[number] += 1
            if number in self.failing:
                self.failing.discard(number)
                return httpx.Response(503, text="<Error><Code>SlowDown</Code></Error>")
            self.bodies[number] = data
        return httpx.Response(200, headers={"ETag": f'"{md5(data)}"'})


def _send(
    tmp_path: Path, storage: Storage, stored: dict[int, StoredPart] | None = None
) -> tuple[Path, SentParts]:
    path = tmp_path / "data.bin"
    path.write_bytes(CONTENT)
    client = Client(
        Config("http://api", "k"),
        transport=httpx.MockTransport(storage),
        backoff=Backoff(retries=1, base=0.001),
        sleep=lambda _: None,
    )
    with client:
        sender = PartSender(client, "f", path, concurrency=2, progress=_Quiet())
        return path, sender.send(plan_parts(path.stat().st_size, PART), stored or {})


class _Quiet:
    def start(self, path: Path, total: int) -> None:
        pass

    def advance(self, path: Path, amount: int) -> None:
        pass


def test_every_part_is_sent_once_and_the_whole_digest_is_in_order(tmp_path: Path) -> None:
    storage = Storage()
    path, sent = _send(tmp_path, storage)
    data = path.read_bytes()
    assert sent.sha256 == hashlib.sha256(data).hexdigest()
    assert b"".join(storage.bodies[n] for n in sorted(storage.bodies)) == data
    assert storage.puts == Counter(range(1, 9))
    assert sent.sent == 8
    assert storage.batches[0] == [1, 2]  # as many as may be in flight, in one request
    assert sorted(n for batch in storage.batches for n in batch) == list(range(1, 9))
    assert storage.most_in_flight <= 2


def test_a_failed_part_is_sent_again_alone_with_a_fresh_url(tmp_path: Path) -> None:
    storage = Storage(failing={3})
    _, sent = _send(tmp_path, storage)
    assert storage.puts[3] == 2
    assert all(count == 1 for number, count in storage.puts.items() if number != 3)
    assert [3] in storage.batches  # the fresh URL
    assert set(sent.etags) == set(range(1, 9))


def _stored(path_bytes: bytes, number: int, *, sha256: bool) -> StoredPart:
    data = path_bytes[(number - 1) * PART : number * PART]
    digest = hashlib.sha256(data).hexdigest() if sha256 else None
    return StoredPart(number, f'"{md5(data)}"', len(data), digest)


@pytest.mark.parametrize("by_sha256", [True, False])
def test_stored_parts_are_read_but_not_sent(tmp_path: Path, by_sha256: bool) -> None:
    content = CONTENT
    stored = {n: _stored(content, n, sha256=by_sha256) for n in (1, 2, 5)}
    storage = Storage()
    path, sent = _send(tmp_path, storage, stored)
    assert path.read_bytes() == content
    assert set(storage.puts) == {3, 4, 6, 7, 8}
    assert sent.sha256 == hashlib.sha256(content).hexdigest()
    assert sent.etags[5] == stored[5].etag


@pytest.mark.parametrize("by_sha256", [True, False])
def test_a_stored_part_that_differs_from_the_file_is_refused(
    tmp_path: Path, by_sha256: bool
) -> None:
    other = bytes(PART)
    stored = {2: _stored(other * 2, 2, sha256=by_sha256)}
    storage = Storage()
    with pytest.raises(IntegrityError, match="--restart"):
        _send(tmp_path, storage, stored)
    assert 2 not in storage.puts
