"""The local S3 server completes and serves large objects in bounded memory.

With ``local.s3_large_objects``, a multipart upload of 384 MiB goes to a server process of this
module's own, whose peak resident memory is read from ``/proc``: moto alone holds such an object
two to three times over while completing it, and once more for each GET. Completion's checks,
checksums and GetObject's headers are checked against the session's server and moto's own code.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from moto.s3.models import FakeKey, MultipartChecksumBuilder

from filepipe.config import Settings
from filepipe.storage import create_s3_client
from local.s3_large_objects import MultipartChecksum, ObjectBody
from tests.support.processes import peak_memory, running
from tests.support.waiting import free_port

MIB = 1024 * 1024
PART = 8 * MIB
PARTS = 48
SIZE = PART * PARTS
BLOCK = random.Random(11).randbytes(PART)  # noqa: S311 (test data)
BUCKET = "uploads"


def part_bytes(number: int) -> bytes:
    """Part ``number``: random bytes, and a head of its own so that no two parts are alike."""
    return hashlib.sha256(number.to_bytes(4, "big")).digest() + BLOCK[32:]


def object_bytes(start: int, stop: int) -> bytes:
    """Bytes ``start`` to ``stop`` of the object the parts make."""
    first, last = start // PART + 1, (stop - 1) // PART + 1
    joined = b"".join(part_bytes(number) for number in range(first, last + 1))
    offset = (first - 1) * PART
    return joined[start - offset : stop - offset]


def upload(
    s3: Any, key: str, count: int, part: Callable[[int], bytes], **create: Any
) -> dict[str, Any]:
    """A multipart upload of parts ``part(1)`` to ``part(count)``, two at a time, completed."""
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key, **create)["UploadId"]
    algorithm = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if create else {}

    def send(number: int) -> dict[str, Any]:
        sent = s3.upload_part(
            Bucket=BUCKET,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=part(number),
            **algorithm,
        )
        checksums = {name: value for name, value in sent.items() if name.startswith("Checksum")}
        return {"PartNumber": number, "ETag": sent["ETag"], **checksums}

    with ThreadPoolExecutor(2) as pool:
        listed = list(pool.map(send, range(1, count + 1)))
    done: dict[str, Any] = s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
    )
    return done


def streamed_sha256(s3: Any, key: str, **get: Any) -> tuple[dict[str, Any], str]:
    """GetObject's answer and the SHA-256 of its body, read 1 MiB at a time."""
    answer = s3.get_object(Bucket=BUCKET, Key=key, **get)
    digest = hashlib.sha256()
    for chunk in answer["Body"].iter_chunks(MIB):
        digest.update(chunk)
    return answer, digest.hexdigest()


class Large:
    """The 384 MiB object, its server process, and that process's peak memory before it."""

    def __init__(self, s3: Any, pid: int) -> None:
        self.s3 = s3
        self.pid = pid
        s3.put_object(Bucket=BUCKET, Key="warm-up", Body=b"imports moto's lazy modules")
        s3.get_object(Bucket=BUCKET, Key="warm-up")["Body"].read()
        self.baseline = peak_memory(pid)
        digest = hashlib.sha256()
        for number in range(1, PARTS + 1):
            digest.update(part_bytes(number))
        self.sha256 = digest.hexdigest()
        self.key = "large/object.bin"
        self.completed = upload(s3, self.key, PARTS, part_bytes)


@pytest.fixture(scope="module")
def large(s3_env: dict[str, str]) -> Iterator[Large]:
    port = free_port()
    with running(["-m", "local.s3_server", "--port", str(port)], port=port, env=s3_env) as proc:
        endpoint = f"http://127.0.0.1:{port}"
        s3 = create_s3_client(Settings.from_env({**s3_env, "FILEPIPE_S3_ENDPOINT_URL": endpoint}))
        yield Large(s3, proc.pid)


@pytest.fixture(scope="module")
def s3(s3_server: str, s3_env: dict[str, str]) -> Any:
    return create_s3_client(Settings.from_env({**s3_env, "FILEPIPE_S3_ENDPOINT_URL": s3_server}))


@pytest.mark.integration
def test_a_large_multipart_upload_is_stored_exactly(large: Large) -> None:
    answer, sha256 = streamed_sha256(large.s3, large.key)

    assert sha256 == large.sha256
    assert answer["ContentLength"] == SIZE
    assert answer["ETag"] == large.completed["ETag"]
    assert answer["ETag"].endswith(f'-{PARTS}"')


@pytest.mark.integration
def test_a_range_across_parts_is_the_exact_slice(large: Large) -> None:
    start, stop = 3 * PART - 1000, 5 * PART + 1000  # ends in the middle of parts 3 and 6
    answer = large.s3.get_object(Bucket=BUCKET, Key=large.key, Range=f"bytes={start}-{stop - 1}")

    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert answer["ContentRange"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert answer["Body"].read() == object_bytes(start, stop)
    suffix = large.s3.get_object(Bucket=BUCKET, Key=large.key, Range="bytes=-10")["Body"].read()
    assert suffix == object_bytes(SIZE - 10, SIZE)


@pytest.mark.integration
def test_the_server_holds_far_less_than_the_object_in_memory(large: Large) -> None:
    assert streamed_sha256(large.s3, large.key)[1] == large.sha256

    growth = peak_memory(large.pid) - large.baseline
    assert growth < SIZE / 2, f"peak grew by {growth / MIB:.0f} MiB for {SIZE / MIB:.0f} MiB"


@pytest.mark.integration
def test_completion_refuses_what_moto_refuses(s3: Any) -> None:
    key = "large/refused.bin"
    upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etags = [
        s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=n, Body=body)["ETag"]
        for n, body in ((1, b"small"), (2, b"last"))
    ]

    def complete(parts: list[dict[str, Any]]) -> str:
        with pytest.raises(ClientError) as refused:
            s3.complete_multipart_upload(
                Bucket=BUCKET, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        return str(refused.value.response["Error"]["Code"])

    assert complete([{"PartNumber": 1, "ETag": etags[1]}]) == "InvalidPart"
    assert complete([{"PartNumber": 3, "ETag": etags[1]}]) == "InvalidPart"
    both = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, 1)]
    assert complete(both) == "EntityTooSmall"
    assert complete([]) == "MalformedXML"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)


@pytest.mark.integration
def test_a_checksummed_upload_gets_its_composite_checksum(s3: Any) -> None:
    parts = [b"a" * (5 * MIB), b"b" * MIB]
    key = "large/checksummed.bin"
    upload(s3, key, len(parts), lambda number: parts[number - 1], ChecksumAlgorithm="SHA256")

    answer, sha256 = streamed_sha256(s3, key, ChecksumMode="ENABLED")
    digests = b"".join(hashlib.sha256(part).digest() for part in parts)
    composite = base64.b64encode(hashlib.sha256(digests).digest()).decode()
    assert answer["ChecksumSHA256"] == f"{composite}-2"
    assert sha256 == hashlib.sha256(b"".join(parts)).hexdigest()


@pytest.mark.integration
def test_get_answers_with_moto_headers(s3: Any) -> None:
    parts = [bytes(range(256)) * (5 * 4096), b"tail"]
    key = "large/headers.bin"
    etag = upload(s3, key, len(parts), lambda number: parts[number - 1])["ETag"]
    size = sum(map(len, parts))
    url = s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": BUCKET,
            "Key": key,
            "ResponseContentType": "application/pdf",
            "ResponseContentDisposition": 'attachment; filename="a.pdf"',
        },
    )

    got = requests.get(url, timeout=10)
    assert got.status_code == 200
    assert got.content == b"".join(parts)
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"] == 'attachment; filename="a.pdf"'
    assert (got.headers["Content-Length"], got.headers["ETag"]) == (str(size), etag)
    ranged = requests.get(url, headers={"Range": f"bytes={size - 6}-"}, timeout=10)
    assert (ranged.status_code, ranged.content) == (206, b"\xfe\xfftail")
    assert ranged.headers["Content-Range"] == f"bytes {size - 6}-{size - 1}/{size}"
    assert requests.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    beyond = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=10)
    assert beyond.status_code == 416
    assert "<Code>InvalidRange</Code>" in beyond.text


@pytest.mark.parametrize("algorithm", [None, "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
@pytest.mark.parametrize("kind", [None, "COMPOSITE", "FULL_OBJECT"])
def test_streamed_checksums_are_moto_s(algorithm: str | None, kind: str | None) -> None:
    parts = [BLOCK[:3000], BLOCK[3000:3001], BLOCK[5000:9000]]
    moto = MultipartChecksumBuilder(algorithm, kind)
    streamed = MultipartChecksum(algorithm, kind)
    for part in parts:
        moto.addPart(part)
        hasher = streamed.part()
        for start in range(0, len(part), 1000):
            hasher.update(part[start : start + 1000])
        streamed.part_done(hasher)

    assert streamed.result() == moto.build()


def test_an_object_body_slices_and_reads_as_bytes_would() -> None:
    value = BLOCK[: 3 * MIB + 5]
    key = FakeKey("k", value, account_id="123456789012", region_name="us-east-1")
    try:
        body = ObjectBody(key)
        assert (len(body), b"".join(body)) == (len(value), value)
        for window in (slice(1, MIB + 7), slice(-10, None), slice(5, 2), slice(0, 10**12)):
            assert b"".join(body[window]) == value[window]
            assert len(body[window]) == len(value[window])
        assert b"".join(body[MIB:][2:MIB]) == value[MIB:][2:MIB]
    finally:
        key.dispose()
