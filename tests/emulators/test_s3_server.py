"""The local S3 server publishes MinIO's notification for every object created, and only then."""

from __future__ import annotations

import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from local.s3_server import KEEP_ALIVE_INTERVAL
from tests.support.inbox import Inbox
from tests.support.processes import running
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration


def client(endpoint: str, env: dict[str, str]) -> Any:
    """A boto3 client signing with the server's key pair (what the functions sign with)."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=env["FILEPIPE_S3_REGION"],
        aws_access_key_id=env["FILEPIPE_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["FILEPIPE_S3_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3(s3_server: str, s3_env: dict[str, str]) -> Any:
    return client(s3_server, s3_env)


def test_the_bucket_exists_at_start(s3: Any) -> None:
    assert "uploads" in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_put_publishes_the_minio_notification(s3: Any, notifications: Inbox) -> None:
    key = "tenant a/dir/report 2026+final.pdf"
    put = s3.put_object(
        Bucket="uploads",
        Key=key,
        Body=b"%PDF-1.7 hi",
        ContentType="application/pdf",
        Metadata={"project": "apollo"},
    )
    properties, body = notifications.next()

    assert body["EventName"] == "s3:ObjectCreated:Put"
    assert body["Key"] == f"uploads/{key}"
    [record] = body["Records"]
    assert (record["eventVersion"], record["eventSource"]) == ("2.0", "minio:s3")
    assert record["eventName"] == "s3:ObjectCreated:Put"
    assert record["eventTime"].endswith("Z") and len(record["eventTime"]) == 24
    assert record["s3"]["bucket"]["name"] == "uploads"
    obj = record["s3"]["object"]
    assert obj["key"] == "tenant+a%2Fdir%2Freport+2026%2Bfinal.pdf"
    assert (obj["size"], obj["eTag"]) == (11, put["ETag"].strip('"'))
    assert obj["contentType"] == "application/pdf"
    assert obj["userMetadata"] == {
        "content-type": "application/pdf",
        "X-Amz-Meta-Project": "apollo",
    }
    assert record["responseElements"]["x-amz-request-id"] == put["ResponseMetadata"]["RequestId"]
    assert record["source"]["userAgent"].startswith("Boto3/")
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == 2
    assert properties.headers == {"minio-bucket": "uploads", "minio-event": "s3:ObjectCreated:Put"}


def test_presigned_put_uploads_and_notifies(s3: Any, notifications: Inbox) -> None:
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "uploads", "Key": "p/put.txt", "ContentType": "text/plain"}
    )
    assert urlsplit(url).path == "/uploads/p/put.txt" and "X-Amz-Signature=" in url
    put = requests.put(url, data=b"put", headers={"Content-Type": "text/plain"}, timeout=10)
    assert put.status_code == 200, put.text

    body = notifications.next()[1]
    assert body["EventName"] == "s3:ObjectCreated:Put"
    obj = body["Records"][0]["s3"]["object"]
    assert (obj["key"], obj["size"], obj["contentType"]) == ("p%2Fput.txt", 3, "text/plain")
    assert obj["eTag"] == put.headers["ETag"].strip('"')


def test_post_form_upload_notifies_post(s3: Any, notifications: Inbox) -> None:
    form = s3.generate_presigned_post("uploads", "p/post form.txt")
    posted = requests.post(form["url"], data=form["fields"], files={"file": b"posted"}, timeout=10)
    assert posted.status_code in (200, 204), posted.text
    assert posted.headers["ETag"] == f'"{hashlib.md5(b"posted").hexdigest()}"'  # noqa: S324
    assert posted.headers["Location"].endswith("/uploads/p/post%20form.txt")

    properties, body = notifications.next()
    assert (body["EventName"], body["Key"]) == ("s3:ObjectCreated:Post", "uploads/p/post form.txt")
    assert body["Records"][0]["s3"]["object"]["key"] == "p%2Fpost+form.txt"
    assert body["Records"][0]["s3"]["object"]["size"] == 6
    assert body["Records"][0]["s3"]["object"]["eTag"] == posted.headers["ETag"].strip('"')
    assert properties.headers["minio-event"] == "s3:ObjectCreated:Post"


def test_multipart_upload_notifies_once_on_completion(s3: Any, notifications: Inbox) -> None:
    upload = s3.create_multipart_upload(Bucket="uploads", Key="big/multi.bin")
    parts = []
    for number in (1, 2):
        part = s3.upload_part(
            Bucket="uploads",
            Key="big/multi.bin",
            PartNumber=number,
            UploadId=upload["UploadId"],
            Body=b"x" * (5 * 1024 * 1024),
        )
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket="uploads",
        Key="big/multi.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )

    body = notifications.next()[1]  # the first message: parts published nothing
    assert body["EventName"] == "s3:ObjectCreated:CompleteMultipartUpload"
    obj = body["Records"][0]["s3"]["object"]
    assert (obj["size"], obj["eTag"]) == (10 * 1024 * 1024, done["ETag"].strip('"'))
    assert obj["eTag"].endswith("-2")
    assert notifications.empty()  # and completion published once


def test_copy_notifies_copy_and_failures_and_bucket_creation_do_not(
    s3: Any, notifications: Inbox
) -> None:
    s3.put_object(Bucket="uploads", Key="src", Body=b"source")
    assert notifications.next()[1]["Key"] == "uploads/src"
    with pytest.raises(ClientError):
        s3.put_object(Bucket="no-such-bucket", Key="k", Body=b"lost")
    with pytest.raises(ClientError):
        s3.copy_object(Bucket="uploads", Key="dst", CopySource={"Bucket": "uploads", "Key": "no"})
    s3.create_bucket(Bucket=f"other-{uuid.uuid4().hex[:8]}")
    s3.copy_object(Bucket="uploads", Key="dst", CopySource={"Bucket": "uploads", "Key": "src"})

    properties, body = notifications.next()
    assert (body["EventName"], body["Key"]) == ("s3:ObjectCreated:Copy", "uploads/dst")
    assert body["Records"][0]["s3"]["object"]["size"] == 6
    assert properties.headers["minio-event"] == "s3:ObjectCreated:Copy"
    assert notifications.empty()


def test_concurrent_puts_each_notify_once(s3: Any, notifications: Inbox) -> None:
    keys = [f"concurrent/{n}" for n in range(12)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket="uploads", Key=key, Body=b"c"), keys))

    records = [notifications.next()[1]["Records"][0] for _ in keys]
    assert sorted(r["s3"]["object"]["key"] for r in records) == sorted(
        key.replace("/", "%2F") for key in keys
    )
    assert len({r["s3"]["object"]["sequencer"] for r in records}) == len(keys)
    assert notifications.empty()


def test_virtual_host_style_put_notifies(
    s3_server: str, s3_env: dict[str, str], notifications: Inbox
) -> None:
    port = urlsplit(s3_server).port
    vhost = boto3.session.Session().client(
        "s3",
        endpoint_url=f"http://s3.filepipe.test:{port}",
        region_name=s3_env["FILEPIPE_S3_REGION"],
        aws_access_key_id=s3_env["FILEPIPE_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["FILEPIPE_S3_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}),
    )
    url = vhost.generate_presigned_url(
        "put_object", Params={"Bucket": "uploads", "Key": "vhost/a b.txt"}
    )
    assert urlsplit(url).netloc == f"uploads.s3.filepipe.test:{port}"
    put = requests.put(  # the signed Host header, sent to 127.0.0.1
        s3_server + urlsplit(url).path + "?" + urlsplit(url).query,
        data=b"vh",
        headers={"Host": urlsplit(url).netloc},
        timeout=10,
    )
    assert put.status_code == 200, put.text

    body = notifications.next()[1]
    assert body["Key"] == "uploads/vhost/a b.txt"
    assert body["Records"][0]["s3"]["object"]["key"] == "vhost%2Fa+b.txt"


def test_uploads_succeed_while_rabbitmq_is_unreachable(
    s3_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **s3_env,
        "FILEPIPE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F",
        "FILEPIPE_S3_QUEUE_DIR": str(tmp_path),  # not the session server's queue
    }
    with running(["-m", "local.s3_server", "--port", str(port)], port=port, env=env) as proc:
        s3 = client(f"http://127.0.0.1:{port}", env)
        s3.put_object(Bucket="uploads", Key="kept", Body=b"kept")
        assert s3.get_object(Bucket="uploads", Key="kept")["Body"].read() == b"kept"
        stopping = time.monotonic()
    assert proc.returncode == 0  # SIGTERM stops it cleanly
    # at once, whichever thread the kernel hands the signal to, not at the next keep-alive
    assert time.monotonic() - stopping < KEEP_ALIVE_INTERVAL / 2
