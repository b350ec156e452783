"""Who sent an S3 request: SigV4 verification of presigned URLs and ``Authorization`` headers.

Follows MinIO's checks (``cmd/signature-v4.go``, ``cmd/signature-v4-parser.go``,
``cmd/signature-v4-utils.go``) in its order, with its error codes (``local.s3_errors``):

- presigned (``X-Amz-Credential`` in the query): all six ``X-Amz-*`` parameters present, the
  algorithm, the credential (known access key, the server's region, service ``s3``), the date,
  ``X-Amz-Expires`` (0 to 604800 s), every signed header present (``host`` among them),
  ``x-amz-meta-*`` headers signed, not before ``X-Amz-Date`` (15 minutes of skew allowed), not
  after ``X-Amz-Date`` + ``X-Amz-Expires``, then the signature over ``UNSIGNED-PAYLOAD`` (or the
  query's ``X-Amz-Content-Sha256``);
- ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``: the same
  credential and header checks, ``x-amz-date`` within 15 minutes of the server's clock, then the
  signature over ``x-amz-content-sha256`` (the SHA-256 of an empty body when absent).

A request with neither is anonymous (``None``); the caller decides what anonymous may do. The
body is not read here: ``Authenticated.payload_sha256`` says which digest the body must have.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from filepipe import sigv4
from local import s3_errors as errors

SERVICE = "s3"
MAX_SKEW = 15 * 60
"""Seconds a request's date may be ahead of (or, with header auth, behind) the server's clock."""
MAX_EXPIRES = 7 * 24 * 3600
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
META_PREFIX = "x-amz-meta-"
MOTO_HEADER_NAMES = "moto.preserved_header_names"
"""Environ key where moto's request handler keeps the names of ``x-amz-meta-*`` headers sent
with ``_`` (WSGI folds ``-`` and ``_`` together; SigV4 signs the name as sent)."""


@dataclass(frozen=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 signs, as they arrived."""

    method: str
    raw_path: str
    """The request target's path, still percent-encoded."""
    raw_query: str
    headers: Mapping[str, str]
    """Lower-case name → value (repeated headers joined with ``,``)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> SignedRequest:
        target = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "")
        if target:
            parts = urlsplit(target)
            raw_path, raw_query = parts.path, parts.query
        else:  # a WSGI server without the raw target: rebuild it
            raw_path = str(environ.get("PATH_INFO", ""))
            raw_query = str(environ.get("QUERY_STRING", ""))
        original: dict[str, str] = environ.get(MOTO_HEADER_NAMES) or {}
        headers: dict[str, str] = {}
        for name, value in environ.items():
            if name.startswith("HTTP_"):
                spelled = original.get(name) or name[5:].replace("_", "-")
                headers[spelled.lower()] = str(value)
            elif name in ("CONTENT_TYPE", "CONTENT_LENGTH") and value != "":
                headers[name.lower().replace("_", "-")] = str(value)
        return cls(str(environ.get("REQUEST_METHOD", "GET")), raw_path, raw_query, headers)

    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    @property
    def presigned(self) -> bool:
        return "X-Amz-Credential" in self.query()

    @property
    def header_signed(self) -> bool:
        return "authorization" in self.headers


@dataclass(frozen=True)
class Credential:
    """``<access key>/<YYYYMMDD>/<region>/s3/aws4_request``, parsed."""

    access_key: str
    date: str
    region: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{SERVICE}/{sigv4.TERMINAL}"


@dataclass(frozen=True)
class Authenticated:
    """A request whose signature checked out."""

    access_key: str
    payload_sha256: str | None
    """The hex SHA-256 the body must have, when the signature covers one (else None)."""


class Authenticator:
    """Verifies SigV4 requests against a fixed set of keys, for one region."""

    def __init__(
        self,
        keys: Mapping[str, str],
        region: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = dict(keys)
        """Access key id → secret access key."""
        self.region = region
        self.clock = clock

    def authenticate(self, request: SignedRequest) -> Authenticated | None:
        """The verified sender, None for an anonymous request; raises ``S3Error`` otherwise."""
        if request.header_signed:
            return self._header(request)
        if request.presigned:
            return self._presigned(request)
        if "Signature" in request.query() or "AWSAccessKeyId" in request.query():
            raise errors.SIGNATURE_VERSION_NOT_SUPPORTED()
        return None

    def secret(self, access_key: str) -> str:
        """The secret of a known access key; ``InvalidAccessKeyId`` otherwise."""
        try:
            return self.keys[access_key]
        except KeyError:
            raise errors.INVALID_ACCESS_KEY_ID() from None

    def credential(self, value: str) -> Credential:
        """Parse ``X-Amz-Credential`` (or the ``Credential=`` of a header) as MinIO does."""
        elements = value.strip().rstrip("/").split("/")
        if len(elements) < 5:
            raise errors.CREDENTIAL_MALFORMED()
        access_key = "/".join(elements[:-4])
        date, region, service, terminal = elements[-4:]
        if not access_key:
            raise errors.INVALID_ACCESS_KEY_ID()
        try:
            datetime.strptime(date, "%Y%m%d")
        except ValueError:
            raise errors.MALFORMED_CREDENTIAL_DATE() from None
        if region != self.region:
            raise errors.authorization_header_malformed(self.region)
        if service != SERVICE:
            raise errors.INVALID_SERVICE()
        if terminal != sigv4.TERMINAL:
            raise errors.INVALID_REQUEST_VERSION()
        return Credential(access_key, date, region)

    def _presigned(self, request: SignedRequest) -> Authenticated:
        query = {name: values[0] for name, values in request.query().items()}
        if any(name not in query for name in PRESIGN_PARAMS):
            raise errors.INVALID_QUERY_PARAMS()
        if query["X-Amz-Algorithm"] != sigv4.ALGORITHM:
            raise errors.INVALID_QUERY_SIGNATURE_ALGO()
        credential = self.credential(query["X-Amz-Credential"])
        amz_date = query["X-Amz-Date"]
        signed_at = _parse_amz_date(amz_date, errors.MALFORMED_PRESIGNED_DATE)
        expires = _parse_expires(query["X-Amz-Expires"])
        signed = _signed_header_names(query["X-Amz-SignedHeaders"])
        given = query["X-Amz-Signature"]
        if not given:
            raise errors.MISSING_FIELDS()
        secret = self.secret(credential.access_key)
        values = _signed_header_values(request, signed)
        for name, value in request.headers.items():
            if name.startswith(META_PREFIX) and values.get(name) != value:
                raise errors.UNSIGNED_HEADERS()
        now = self.clock()
        if signed_at > now + MAX_SKEW:
            raise errors.NOT_YET_VALID()
        if now - signed_at > expires:
            raise errors.EXPIRED()
        payload = query.get("X-Amz-Content-Sha256", sigv4.UNSIGNED_PAYLOAD)
        expected = self._signature(
            request,
            credential,
            secret,
            amz_date,
            signed,
            values,
            payload,
            leave_out=frozenset({"X-Amz-Signature"}),
        )
        if not sigv4.same_signature(given, expected):
            raise errors.SIGNATURE_DOES_NOT_MATCH()
        return Authenticated(credential.access_key, _payload_digest(payload))

    def _header(self, request: SignedRequest) -> Authenticated:
        value = request.headers["authorization"].strip()
        if not value:
            raise errors.AUTH_HEADER_EMPTY()
        if not value.startswith(sigv4.ALGORITHM):
            raise errors.SIGNATURE_VERSION_NOT_SUPPORTED()
        fields = [field.strip() for field in value[len(sigv4.ALGORITHM) :].split(",")]
        if len(fields) != 3:
            raise errors.MISSING_FIELDS()
        parsed: dict[str, str] = {}
        for field, tag in zip(fields, ("Credential", "SignedHeaders", "Signature"), strict=True):
            name, sep, content = field.partition("=")
            if not sep or name != tag or not content:
                raise errors.MISSING_FIELDS()
            parsed[tag] = content
        credential = self.credential(parsed["Credential"])
        signed = _signed_header_names(parsed["SignedHeaders"])
        values = _signed_header_values(request, signed)
        secret = self.secret(credential.access_key)
        amz_date = request.headers.get("x-amz-date")
        if amz_date is None:
            raise errors.MISSING_DATE()
        signed_at = _parse_amz_date(amz_date, errors.MALFORMED_DATE)
        if abs(self.clock() - signed_at) > MAX_SKEW:
            raise errors.REQUEST_TIME_TOO_SKEWED()
        payload = request.headers.get("x-amz-content-sha256", sigv4.EMPTY_SHA256)
        literal = payload == sigv4.UNSIGNED_PAYLOAD or payload.startswith("STREAMING-")
        if not literal and not HEX_SHA256.fullmatch(payload):
            raise errors.CONTENT_SHA256_MISMATCH()
        expected = self._signature(
            request, credential, secret, amz_date, signed, values, payload, leave_out=frozenset()
        )
        if not sigv4.same_signature(parsed["Signature"], expected):
            raise errors.SIGNATURE_DOES_NOT_MATCH()
        return Authenticated(credential.access_key, _payload_digest(payload))

    def _signature(
        self,
        request: SignedRequest,
        credential: Credential,
        secret: str,
        amz_date: str,
        signed: list[str],
        values: Mapping[str, str],
        payload: str,
        *,
        leave_out: frozenset[str],
    ) -> str:
        canonical = sigv4.canonical_request(
            method=request.method,
            uri=sigv4.canonical_uri(request.raw_path),
            query=sigv4.canonical_query(request.raw_query, leave_out=leave_out),
            headers=sigv4.canonical_headers(signed, values),
            signed=signed,
            payload=payload,
        )
        key = sigv4.signing_key(secret, credential.date, credential.region, SERVICE)
        return sigv4.signature(key, sigv4.string_to_sign(amz_date, credential.scope, canonical))


def _parse_amz_date(value: str, refusal: errors.Refusal) -> float:
    try:
        return datetime.strptime(value, AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise refusal() from None


def _parse_expires(value: str) -> int:
    try:
        expires = int(value)
    except ValueError:
        raise errors.MALFORMED_EXPIRES() from None
    if expires < 0:
        raise errors.NEGATIVE_EXPIRES()
    if expires > MAX_EXPIRES:
        raise errors.MAXIMUM_EXPIRES()
    return expires


def _signed_header_names(value: str) -> list[str]:
    if not value:
        raise errors.MISSING_FIELDS()
    return value.lower().split(";")


def _signed_header_values(request: SignedRequest, signed: list[str]) -> dict[str, str]:
    """The value of each signed header; every one must be there, ``host`` among them."""
    if "host" not in signed:
        raise errors.UNSIGNED_HEADERS()
    values: dict[str, str] = {}
    for name in signed:
        value = request.headers.get(name)
        if value is None and name == "content-length":
            value = "0"  # what MinIO signs for a request without a body
        if value is None:
            raise errors.UNSIGNED_HEADERS()
        values[name] = value
    return values


def _payload_digest(payload: str) -> str | None:
    return payload.lower() if HEX_SHA256.fullmatch(payload) else None
