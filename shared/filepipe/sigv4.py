"""AWS Signature Version 4 as S3 applies it: canonical request, string to sign, signature.

Implements https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html with S3's
rules (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html):

- the canonical URI is the request path, percent-decoded and URI-encoded once (every byte but
  ``A-Z a-z 0-9 - . _ ~`` and ``/`` as ``%XX``); S3 neither normalises nor double-encodes it;
- the canonical query string is every parameter, name and value decoded (``+`` is a space, as
  MinIO reads it) then URI-encoded (``/`` too), sorted by name then value, ``name=value`` joined
  with ``&``; presigned requests leave ``X-Amz-Signature`` out;
- canonical headers are the signed ones, lower-case, sorted, each ``name:value`` with the value
  trimmed and inner runs of whitespace collapsed to one space;
- the payload is ``UNSIGNED-PAYLOAD`` or the body's hex SHA-256;
- the signing key is HMAC-SHA256 chained over ``AWS4`` + secret, date, region, service and
  ``aws4_request``; the signature is the hex HMAC of the string to sign.

Pure: strings in, strings out. The local S3 server verifies with it (what to check is chosen by
``local.s3_auth``), and ``filepipe.presigner`` signs upload URLs with it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINAL = "aws4_request"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def uri_encode(raw: bytes, *, keep_slash: bool) -> str:
    """SigV4's URI encoding of ``raw``: unreserved bytes as they are, the rest ``%XX``."""
    return quote(raw, safe="/" if keep_slash else "")


def canonical_uri(raw_path: str) -> str:
    """The canonical URI of a request path as sent (still percent-encoded)."""
    return uri_encode(unquote_to_bytes(raw_path), keep_slash=True) or "/"


def canonical_query(raw_query: str, *, leave_out: frozenset[str] = frozenset()) -> str:
    """The canonical query string of a query as sent, without the parameters in ``leave_out``."""
    pairs: list[tuple[str, str]] = []
    for item in raw_query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        encoded = _reencode(name)
        if encoded not in leave_out:
            pairs.append((encoded, _reencode(value)))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _reencode(component: str) -> str:
    return uri_encode(unquote_to_bytes(component.replace("+", " ")), keep_slash=False)


def canonical_headers(signed: Sequence[str], values: Mapping[str, str]) -> str:
    """``name:value\\n`` for each signed header (``values`` by lower-case name), sorted."""
    return "".join(f"{name}:{' '.join(values[name].split())}\n" for name in sorted(signed))


def canonical_request(
    *,
    method: str,
    uri: str,
    query: str,
    headers: str,
    signed: Sequence[str],
    payload: str,
) -> str:
    """The six lines SigV4 hashes; ``headers`` from ``canonical_headers``."""
    return "\n".join([method, uri, query, headers, ";".join(sorted(signed)), payload])


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    """What is signed: algorithm, ``X-Amz-Date``, credential scope, hash of the request."""
    digest = hashlib.sha256(request.encode()).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key derived for one day, region and service (``date`` as ``YYYYMMDD``)."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, TERMINAL):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(key: bytes, message: str) -> str:
    """The hex HMAC-SHA256 of ``message`` (a string to sign, or a POST policy) under ``key``."""
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def same_signature(given: str, expected: str) -> bool:
    """Constant-time comparison of two hex signatures."""
    return hmac.compare_digest(given.encode(), expected.encode())
