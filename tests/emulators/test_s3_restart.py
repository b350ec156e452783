"""Objects of the local S3 survive a SIGKILL and restart of its process (its data directory).

The real server process: objects written by PUT (with metadata and a SHA-256 checksum),
CompleteMultipartUpload (an ``-N`` ETag) and CopyObject answer HEAD and GET after the restart
exactly as before it; a deleted object stays deleted.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from filepipe.config import Settings
from filepipe.storage import create_s3_client
from tests.support.processes import running
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SHOWN = (
    "ETag",
    "ContentLength",
    "ContentType",
    "Metadata",
    "LastModified",
    "ChecksumSHA256",
    "ContentDisposition",
)


def described(client: Any, key: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """What HEAD and GET answer for ``key`` (the fields a client sees) and the bytes."""
    head = client.head_object(Bucket="uploads", Key=key, ChecksumMode="ENABLED")
    got = client.get_object(Bucket="uploads", Key=key, ChecksumMode="ENABLED")
    body = got["Body"].read()
    return (
        {name: head.get(name) for name in SHOWN},
        {name: got.get(name) for name in SHOWN},
        body,
    )


def write_objects(client: Any) -> list[str]:
    single = b"%PDF-1.7 single\n" * 1000
    client.put_object(
        Bucket="uploads",
        Key="kept/single file.pdf",
        Body=single,
        ContentType="application/pdf",
        ContentDisposition='attachment; filename="single file.pdf"',
        Metadata={"tenant": "a", "note": "kept"},
        ChecksumAlgorithm="SHA256",
    )
    upload = client.create_multipart_upload(
        Bucket="uploads", Key="kept/multi.bin", ContentType="application/octet-stream"
    )
    parts = [os.urandom(5 * MIB), os.urandom(MIB)]
    etags = [
        client.upload_part(
            Bucket="uploads",
            Key="kept/multi.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=part,
        )["ETag"]
        for number, part in enumerate(parts, start=1)
    ]
    client.complete_multipart_upload(
        Bucket="uploads",
        Key="kept/multi.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={
            "Parts": [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, start=1)]
        },
    )
    client.copy_object(
        Bucket="uploads",
        Key="kept/copy.pdf",
        CopySource={"Bucket": "uploads", "Key": "kept/single file.pdf"},
    )
    client.put_object(Bucket="uploads", Key="kept/overwritten.txt", Body=b"first")
    client.put_object(
        Bucket="uploads", Key="kept/overwritten.txt", Body=b"second", ContentType="text/plain"
    )
    client.put_object(Bucket="uploads", Key="gone/deleted.txt", Body=b"bye")
    client.delete_object(Bucket="uploads", Key="gone/deleted.txt")
    return ["kept/single file.pdf", "kept/multi.bin", "kept/copy.pdf", "kept/overwritten.txt"]


def test_objects_answer_the_same_after_a_kill_and_restart(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    port = free_port()
    env = {**s3_env, "FILEPIPE_S3_DATA_DIR": str(tmp_path / "data")}
    client = create_s3_client(
        Settings.from_env({**env, "FILEPIPE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    )
    args = ["-m", "local.s3_server", "--port", str(port)]
    with running(args, port=port, env=env) as first:
        keys = write_objects(client)
        before = {key: described(client, key) for key in keys}
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)

    with running(args, port=port, env=env):
        after = {key: described(client, key) for key in keys}
        listed = client.list_objects_v2(Bucket="uploads", Prefix="gone/")
        with pytest.raises(client.exceptions.ClientError) as missing:
            client.head_object(Bucket="uploads", Key="gone/deleted.txt")

    assert after == before
    assert before["kept/multi.bin"][0]["ETag"].endswith('-2"')
    assert before["kept/single file.pdf"][0]["Metadata"] == {"tenant": "a", "note": "kept"}
    single = before["kept/single file.pdf"]
    assert (
        single[0]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(single[2]).digest()).decode()
    )
    assert before["kept/overwritten.txt"][2] == b"second"
    assert listed["KeyCount"] == 0
    assert missing.value.response["Error"]["Code"] == "404"
