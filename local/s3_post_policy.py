"""Browser form uploads (POST Object with a SigV4 POST policy), checked as MinIO checks them.

Spec: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html and
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-authentication-HTTPPOST.html; MinIO's
``PostPolicyBucketHandler`` (``cmd/bucket-handlers.go``) and ``cmd/postpolicyform.go``.

``read_form`` reads the multipart body with werkzeug's decoder (the parser moto uses next, so
both see the same fields): the fields before the part named ``file``, which must be the last
part, then the file's name, size and digests, in constant memory. ``verify`` then checks, in
MinIO's order and with its answers:

- the form: a ``file`` part and a ``key`` field (400 ``MalformedPOSTRequest``);
- the signature: ``x-amz-credential`` as for any SigV4 request, ``x-amz-signature`` = the hex
  HMAC of the base64 ``policy`` field under the derived key (403 ``SignatureDoesNotMatch``);
- the policy: JSON with ``expiration`` and ``conditions`` only (else 403
  ``PostPolicyInvalidKeyName``), not expired, each condition (``{"field": "value"}``, ``["eq",
  "$field", "value"]``, ``["starts-with", "$field", "prefix"]``) met by the form (``bucket``
  being the bucket posted to), and every form field but ``x-amz-signature``, ``file``,
  ``policy`` and ``x-ignore-*`` named by a condition (403 ``AccessDenied`` naming the condition
  or the field);
- ``["content-length-range", min, max]`` against the file's size (400 ``EntityTooSmall`` /
  ``EntityTooLarge``), then ``Content-MD5`` / ``x-amz-checksum-*`` fields against its bytes.

A stored upload is answered, as S3 answers it, with the object's ``ETag`` (the file's MD5) and its
``Location`` (``local.s3_guard``); Uppy's S3 plugin needs the ETag.

``${filename}`` in ``key`` is replaced by the file's name before the checks, as S3 and moto do.
Names of fields and conditions are case-insensitive.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import posixpath
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any

from werkzeug.exceptions import HTTPException
from werkzeug.sansio.multipart import (
    NEED_DATA,
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
)

from filepipe import sigv4
from local import s3_errors as errors
from local.s3_auth import Authenticated, Authenticator
from local.s3_body import Declared, Digests, declared_checksum, declared_md5

FILE = "file"
NOT_IN_POLICY = frozenset({"x-amz-signature", "file", "policy"})
"""Form fields a policy need not name (besides ``x-ignore-*``)."""
EXACT_ONLY = frozenset({"bucket", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "tagging"})
"""Fields a policy may only match exactly (MinIO refuses ``starts-with`` on them)."""
MAX_FIELD_BYTES = 1024 * 1024
READ_SIZE = 64 * 1024


@dataclass
class Form:
    """A POST form as read: fields (lower-case names) before the file, and the file."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    """The file part's file name (None: no ``file`` part)."""
    size: int = 0
    digests: Digests | None = None
    md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    """The file's running MD5: the stored object's ETag, which S3 answers a form upload with."""

    def value(self, name: str) -> str:
        values = self.fields.get(name)
        return values[0] if values else ""


@dataclass(frozen=True)
class Condition:
    operator: str
    """``eq`` or ``starts-with``."""
    name: str
    """Field name, lower case, without the ``$``."""
    value: str

    def __str__(self) -> str:
        return json.dumps([self.operator, f"${self.name}", self.value])


@dataclass(frozen=True)
class Policy:
    expiration: datetime
    conditions: tuple[Condition, ...]
    length_range: tuple[int, int] | None


def read_form(body: IO[bytes], boundary: bytes) -> Form:
    """Read a ``multipart/form-data`` body; raises ``MalformedPOSTRequest`` when it is not one."""
    decoder = MultipartDecoder(boundary)
    form = Form()
    current: str | None = None
    value = bytearray()
    try:
        while True:
            event = decoder.next_event()
            if event is NEED_DATA:
                decoder.receive_data(body.read(READ_SIZE) or None)
            elif isinstance(event, Epilogue):
                return form
            elif isinstance(event, Field | File):
                if form.filename is not None:
                    raise errors.MALFORMED_POST_REQUEST("the file must be the last form field")
                current = (event.name or "").lower() or None
                value.clear()
                if current == FILE:
                    filename = event.filename if isinstance(event, File) else ""
                    form.filename = posixpath.basename(filename)
                    form.digests = Digests(_declared(form))
                elif isinstance(event, File):
                    raise errors.MALFORMED_POST_REQUEST(f"a file in field {event.name!r}")
            elif isinstance(event, Data) and current == FILE and form.digests is not None:
                form.digests.update(event.data)
                form.md5.update(event.data)
                form.size += len(event.data)
            elif isinstance(event, Data) and current is not None:
                value += event.data
                if len(value) > MAX_FIELD_BYTES:
                    raise errors.MALFORMED_POST_REQUEST(f"field {current!r} is too large")
                if not event.more_data:
                    form.fields.setdefault(current, []).append(value.decode("utf-8", "replace"))
    except (ValueError, HTTPException) as exc:  # werkzeug's parse errors
        raise errors.MALFORMED_POST_REQUEST(str(exc)) from exc


def _declared(form: Form) -> Declared:
    values = {name: values[0] for name, values in form.fields.items() if values}
    return Declared(
        length=0, md5=declared_md5(values.get("content-md5")), checksum=declared_checksum(values)
    )


def verify(form: Form, bucket: str, authenticator: Authenticator, now: datetime) -> Authenticated:
    """Check ``form`` posted to ``bucket``; the key's owner, or ``S3Error``."""
    if form.filename is None or form.digests is None:
        raise errors.MALFORMED_POST_REQUEST("The file or text content is missing")
    if "key" not in form.fields:
        raise errors.MALFORMED_POST_REQUEST("The name of the uploaded key is missing")
    if "${filename}" in form.value("key"):
        form.fields["key"] = [form.value("key").replace("${filename}", form.filename)]
    form.fields["bucket"] = [bucket]

    credential = authenticator.credential(form.value("x-amz-credential"))
    secret = authenticator.secret(credential.access_key)
    document = form.value("policy")
    key = sigv4.signing_key(secret, credential.date, credential.region, "s3")
    if not sigv4.same_signature(form.value("x-amz-signature"), sigv4.signature(key, document)):
        raise errors.SIGNATURE_DOES_NOT_MATCH()
    if not document:
        raise errors.ACCESS_DENIED("a POST upload needs a policy")
    try:
        decoded = base64.b64decode(document, validate=True)
    except (binascii.Error, ValueError):
        raise errors.MALFORMED_POST_REQUEST("the policy is not base64") from None
    policy = parse_policy(decoded)
    check(policy, form, now)
    if policy.length_range is not None:
        low, high = policy.length_range
        if form.size < low:
            raise errors.ENTITY_TOO_SMALL()
        if form.size > high:
            raise errors.ENTITY_TOO_LARGE()
    form.digests.verify()
    return Authenticated(credential.access_key, None)


def parse_policy(document: bytes) -> Policy:
    """A policy document, parsed as strictly as MinIO does (403 ``PostPolicyInvalidKeyName``)."""
    try:
        raw = json.loads(document, object_pairs_hook=_unique_keys)
        if not isinstance(raw, dict) or set(raw) - {"expiration", "conditions"}:
            raise ValueError("a policy has expiration and conditions only")
        expiration = datetime.fromisoformat(str(raw.get("expiration", "")))
        if expiration.tzinfo is None:
            raise ValueError("the expiration has no time zone")
        conditions: list[Condition] = []
        length_range: tuple[int, int] | None = None
        for item in raw.get("conditions") or []:
            if isinstance(item, dict):
                for name, value in item.items():
                    if not isinstance(value, str):
                        raise ValueError(f"condition {item} is not a string")
                    conditions.append(Condition("eq", name.lower(), value))
            elif isinstance(item, list) and len(item) == 3:
                operator = str(item[0]).lower()
                if operator == "content-length-range":
                    length_range = (_integer(item[1]), _integer(item[2]))
                elif operator in ("eq", "starts-with"):
                    if not all(isinstance(part, str) for part in item):
                        raise ValueError(f"condition {item} is not strings")
                    if not item[1].startswith("$"):
                        raise ValueError(f"condition {item} names no $field")
                    conditions.append(Condition(operator, item[1][1:].lower(), item[2]))
                else:
                    raise ValueError(f"unknown condition {item}")
            else:
                raise ValueError(f"malformed condition {item}")
    except (ValueError, TypeError) as exc:
        raise errors.POST_POLICY_INVALID(str(exc)) from None
    return Policy(expiration, tuple(conditions), length_range)


def check(policy: Policy, form: Form, now: datetime) -> None:
    """Every condition met and every field named by one (403 ``AccessDenied`` otherwise)."""
    if policy.expiration <= now:
        raise errors.ACCESS_DENIED("Invalid according to Policy: Policy expired")
    unnamed = {
        name
        for name in form.fields
        if name not in NOT_IN_POLICY and not name.startswith("x-ignore-")
    }
    for condition in policy.conditions:
        values = form.fields.get(condition.name, [])
        if len(values) > 1:
            raise errors.ACCESS_DENIED(
                f"Invalid according to Policy: Policy Condition failed: {condition}. "
                f"FormValues have multiple values: [{', '.join(values)}]"
            )
        given = values[0] if values else ""
        if condition.operator == "eq":
            met = given == condition.value
        else:
            met = condition.name not in EXACT_ONLY and given.startswith(condition.value)
        if not met:
            raise errors.ACCESS_DENIED(
                f"Invalid according to Policy: Policy Condition failed: {condition}"
            )
        unnamed.discard(condition.name)
    if unnamed:
        names = ", ".join(sorted(unnamed))
        raise errors.ACCESS_DENIED(
            "Each form field that you specify in a form must appear in the list of policy "
            f'conditions. "{names}" not specified in the policy.'
        )


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"input policy has multiple {name}, please fix your client code")
        result[name] = value
    return result


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number")
    return int(value)
