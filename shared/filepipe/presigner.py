"""Presigned S3 URLs (SigV4 query authentication) signed here rather than by botocore.

botocore builds a whole request, runs its event hooks and derives the signing key again for
every URL: most of presign's CPU per upload. ``Presigner`` signs the canonical request itself
(``filepipe.sigv4``, the same code the local S3 server verifies with) and derives the key once per
day, region and secret. The URL is the one botocore makes for a path-style client, byte for byte
(a unit test compares them): ``<endpoint>/<bucket>/<key>`` (the key URI-encoded but ``/`` and
``~``), then ``X-Amz-Algorithm``, ``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-SignedHeaders`` (``host`` and the given headers), ``X-Amz-Security-Token`` with temporary
credentials, and ``X-Amz-Signature``; the payload is ``UNSIGNED-PAYLOAD``.

Credentials come from botocore's resolved ones (``credentials_of``), read at every signature, so
rotated temporary credentials (web identity, instance roles) are followed as botocore would.
Spec: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import botocore.auth

from filepipe import sigv4

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SERVICE = "s3"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def credentials_of(client: S3Client) -> Callable[[], Credentials]:
    """The current credentials of a boto3 client (refreshed by botocore when they expire)."""

    def current() -> Credentials:
        frozen = client._request_signer._credentials.get_frozen_credentials()  # type: ignore[attr-defined]
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    return current


class Presigner:
    """Signs URLs for one endpoint (path-style) and region."""

    def __init__(self, endpoint: str, region: str, credentials: Callable[[], Credentials]) -> None:
        parts = urlsplit(endpoint)
        self.endpoint = endpoint.rstrip("/")
        self.host = parts.netloc
        self.base_path = parts.path.rstrip("/")
        self.region = region
        self.credentials = credentials
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, client: S3Client) -> Presigner:
        """The presigner of a (path-style) boto3 client: its endpoint, region and credentials."""
        return cls(client.meta.endpoint_url, client.meta.region_name, credentials_of(client))

    def presign(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        headers: Mapping[str, str],
        expires_in: int,
        now: datetime | None = None,
    ) -> str:
        """A URL for ``method`` on ``bucket``/``key`` signing ``host`` and ``headers`` (the
        client must send exactly them), valid ``expires_in`` seconds from ``now`` (by default
        botocore's clock, which tests may shift)."""
        creds = self.credentials()
        moment = now.astimezone(UTC) if now else _botocore_now()
        date, amz_date = moment.strftime("%Y%m%d"), moment.strftime("%Y%m%dT%H%M%SZ")
        scope = f"{date}/{self.region}/{SERVICE}/{sigv4.TERMINAL}"
        values = {name.lower(): value for name, value in headers.items()}
        values["host"] = self.host
        signed = sorted(values)
        params = [
            ("X-Amz-Algorithm", sigv4.ALGORITHM),
            ("X-Amz-Credential", f"{creds.access_key}/{scope}"),
            ("X-Amz-Date", amz_date),
            ("X-Amz-Expires", str(expires_in)),
            ("X-Amz-SignedHeaders", ";".join(signed)),
        ]
        if creds.token:
            params.append(("X-Amz-Security-Token", creds.token))
        query = "&".join(f"{name}={_encode(value)}" for name, value in params)
        path = f"{self.base_path}/{bucket}/{quote(key, safe='/~')}"
        request = sigv4.canonical_request(
            method=method,
            uri=path,
            query="&".join(f"{name}={_encode(value)}" for name, value in sorted(params)),
            headers=sigv4.canonical_headers(signed, values),
            signed=signed,
            payload=sigv4.UNSIGNED_PAYLOAD,
        )
        to_sign = sigv4.string_to_sign(amz_date, scope, request)
        signature = sigv4.signature(self._key(creds.secret_key, date), to_sign)
        return f"{self.endpoint}{path[len(self.base_path) :]}?{query}&X-Amz-Signature={signature}"

    def _key(self, secret: str, date: str) -> bytes:
        """The signing key of ``date``, derived once (a few days' keys are kept)."""
        key = self._keys.get((secret, date))
        if key is None:
            key = sigv4.signing_key(secret, date, self.region, SERVICE)
            with self._lock:
                if len(self._keys) > 4:
                    self._keys.clear()
                self._keys[(secret, date)] = key
        return key


def _botocore_now() -> datetime:
    """UTC now, from the clock botocore signs with (naive), so both sign at the same time."""
    now: datetime = botocore.auth.get_current_datetime()  # type: ignore[attr-defined]
    return now


def _encode(value: str) -> str:
    return quote(value, safe="-_.~")
