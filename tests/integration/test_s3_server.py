"""The local S3 server publishes MinIO's notification for every object created, and only then."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.inbox import Inbox

pytestmark = pytest.mark.integration


@pytest.fixture
def s3(s3_server: str, s3_env: dict[str, str]) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test-secret",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


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
    obj = body["Records"][0]["s3"]["object"]
    assert obj["key"] == "tenant+a%2Fdir%2Freport+2026%2Bfinal.pdf"
    assert (obj["size"], obj["eTag"]) == (11, put["ETag"].strip('"'))
    assert obj["contentType"] == "application/pdf"
    assert obj["userMetadata"]["x-amz-meta-project"] == "apollo"
    assert body["Records"][0]["s3"]["bucket"]["name"] == "uploads"
    assert properties.content_type == "application/json"
    assert properties.delivery_mode == 2
    assert properties.headers == {"minio-bucket": "uploads", "minio-event": "s3:ObjectCreated:Put"}


def test_presigned_put_and_post_upload_notify(s3: Any, notifications: Inbox) -> None:
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": "uploads", "Key": "p/put.txt", "ContentType": "text/plain"}
    )
    assert requests.put(url, data=b"put", headers={"Content-Type": "text/plain"}, timeout=10).ok
    assert notifications.next()[1]["Records"][0]["s3"]["object"]["key"] == "p%2Fput.txt"

    form = s3.generate_presigned_post("uploads", "p/post.txt")
    posted = requests.post(form["url"], data=form["fields"], files={"file": b"posted"}, timeout=10)
    assert posted.status_code in (200, 204), posted.text
    body = notifications.next()[1]
    assert body["EventName"] == "s3:ObjectCreated:Post"
    assert body["Records"][0]["s3"]["object"]["size"] == 6


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
    s3.complete_multipart_upload(
        Bucket="uploads",
        Key="big/multi.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )

    body = notifications.next()[1]
    assert body["EventName"] == "s3:ObjectCreated:CompleteMultipartUpload"
    assert body["Records"][0]["s3"]["object"]["size"] == 10 * 1024 * 1024
    s3.put_object(Bucket="uploads", Key="marker", Body=b"m")  # the next message is this one
    assert notifications.next()[1]["Key"] == "uploads/marker"


def test_copy_notifies_and_failures_do_not(s3: Any, notifications: Inbox) -> None:
    s3.put_object(Bucket="uploads", Key="src", Body=b"source")
    assert notifications.next()[1]["Key"] == "uploads/src"
    with pytest.raises(ClientError):
        s3.put_object(Bucket="no-such-bucket", Key="k", Body=b"lost")
    s3.copy_object(Bucket="uploads", Key="dst", CopySource={"Bucket": "uploads", "Key": "src"})

    body = notifications.next()[1]
    assert (body["EventName"], body["Key"]) == ("s3:ObjectCreated:Copy", "uploads/dst")
    assert notifications.empty()


def test_the_bucket_exists_at_start(s3: Any) -> None:
    assert "uploads" in {b["Name"] for b in s3.list_buckets()["Buckets"]}
