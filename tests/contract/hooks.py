"""Schemathesis hooks of the contract run (``SCHEMATHESIS_HOOKS=tests.contract.hooks``).

They keep *positive* cases valid where the document can only say so in prose, so that
``positive_data_acceptance`` holds the server to what the document promises:

- ``x-filepipe-max-utf8-bytes``: a filename longer than 255 bytes of UTF-8 is dropped;
- ``x-filepipe-max-json-bytes``: metadata longer than 2048 bytes as JSON is dropped (these two
  for ``POST /uploads``, ``POST /upload-tokens`` and Companion's ``GET /s3/params`` and
  ``POST /s3/multipart``);
- ``GET /files``: a ``cursor`` is only valid if the server issued it (it is removed), and
  ``created_after`` must be earlier than ``created_before`` (the latter is removed if not);
- ``POST /uploads``: a ``part_size`` needs a multipart upload (``multipart: true``, or a size
  from ``FILEPIPE_MULTIPART_THRESHOLD`` on) of at most 10,000 such parts (else dropped);
- ``POST /uploads/{id}/parts``: part numbers must be the upload's (the seeded multipart upload
  has ``SEEDED_PARTS``): they are folded into 1 to that, and digests of parts not requested are
  dropped.

And half the drawn ids of positive cases are replaced by ids of the tenant's own files or endpoints
(``FILEPIPE_CONTRACT_FILE_IDS``, ``FILEPIPE_CONTRACT_WEBHOOK_IDS``: comma-separated), so that reads
succeed and their answers are checked too; the other half stay unknown (a 404). The seeded files
have every status, so ``downloadFile`` answers both its 200 (or 302) and its 409, and one is a
PENDING multipart upload, which the multipart routes answer.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime
from typing import Any

import schemathesis
from schemathesis import Case, GenerationMode, HookContext
from schemathesis.generation.meta import TestPhase

MULTIPART_THRESHOLD = 64 * 1024**2
"""``FILEPIPE_MULTIPART_THRESHOLD``'s default, which the contract run keeps."""
SEEDED_PARTS = 3
"""Parts of the tenant's seeded multipart upload (``conftest.py``: 12 MiB in 5 MiB parts)."""
_ID_SOURCES = {
    "getFile": "FILEPIPE_CONTRACT_FILE_IDS",
    "getFileLogs": "FILEPIPE_CONTRACT_FILE_IDS",
    "downloadFile": "FILEPIPE_CONTRACT_FILE_IDS",
    "presignUploadParts": "FILEPIPE_CONTRACT_FILE_IDS",
    "listUploadParts": "FILEPIPE_CONTRACT_FILE_IDS",
    "completeUpload": "FILEPIPE_CONTRACT_FILE_IDS",
    "abortUpload": "FILEPIPE_CONTRACT_FILE_IDS",
    "getWebhook": "FILEPIPE_CONTRACT_WEBHOOK_IDS",
    "deleteWebhook": "FILEPIPE_CONTRACT_WEBHOOK_IDS",
    "listWebhookDeliveries": "FILEPIPE_CONTRACT_WEBHOOK_IDS",
}


@schemathesis.hook
def filter_case(context: HookContext, case: Case[Any]) -> bool:
    if not _positive(case):
        return True
    operation = _operation_id(case)
    if operation in ("createUpload", "createUploadToken") and isinstance(case.body, dict):
        return not (
            _beyond_prose(case.body.get("filename"), case.body.get("metadata"))
            or _impossible_parts(case.body)
        )
    if operation == "listFiles" and case.query:
        return not _too_many_bytes(case.query.get("filename"), 255)
    if operation == "companionCreateMultipartUpload" and isinstance(case.body, dict):
        return not _beyond_prose(case.body.get("filename"), case.body.get("metadata"))
    if operation == "companionUploadParameters" and case.query:
        return not _beyond_prose(case.query.get("filename"), case.query.get("metadata"))
    return True


def _beyond_prose(filename: Any, metadata: Any) -> bool:
    """A filename over 255 bytes of UTF-8 or metadata over 2048 bytes as JSON."""
    too_much = isinstance(metadata, dict) and len(json.dumps(metadata).encode()) > 2048
    return _too_many_bytes(filename, 255) or too_much


@schemathesis.hook
def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
    if not _positive(case):
        return case
    operation = _operation_id(case)
    if operation == "listFiles" and case.query:
        case.query.pop("cursor", None)
        after, before = case.query.get("created_after"), case.query.get("created_before")
        if after is not None and before is not None and not _earlier(after, before):
            del case.query["created_before"]
    if operation == "presignUploadParts" and isinstance(case.body, dict):
        case.body = _folded(case.body)
    source = _ID_SOURCES.get(operation)
    drawn = _uuid((case.path_parameters or {}).get("id"))
    linked = case.meta is not None and case.meta.phase.name == TestPhase.STATEFUL  # a real id
    if source and drawn is not None and not linked and drawn.int % 2 == 0:
        existing = [value for value in os.environ.get(source, "").split(",") if value]
        if existing:
            chosen = existing[drawn.int // 2 % len(existing)]
            case.path_parameters = {**(case.path_parameters or {}), "id": chosen}
    return case


def _impossible_parts(body: dict[str, Any]) -> bool:
    part_size, size = body.get("part_size"), body.get("size")
    if not isinstance(part_size, int | float) or not isinstance(size, int | float):
        return False
    below = body.get("multipart") is None and size < MULTIPART_THRESHOLD
    return below or size > part_size * 10_000


def _folded(body: dict[str, Any]) -> dict[str, Any]:
    """``part_numbers`` and ``sha256``'s keys folded into 1..``SEEDED_PARTS``, kept unique."""
    numbers = body.get("part_numbers")
    if not isinstance(numbers, list):
        return body
    folded = list(dict.fromkeys(int(n - 1) % SEEDED_PARTS + 1 for n in numbers))
    digests = body.get("sha256")
    result: dict[str, Any] = {**body, "part_numbers": folded}
    if isinstance(digests, dict):
        keys = {str((int(k) - 1) % SEEDED_PARTS + 1): v for k, v in digests.items()}
        result["sha256"] = {k: v for k, v in keys.items() if int(k) in folded}
    return result


def _positive(case: Case[Any]) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


def _operation_id(case: Case[Any]) -> str:
    return str(case.operation.definition.raw.get("operationId", ""))


def _too_many_bytes(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value.encode()) > limit


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def _earlier(after: Any, before: Any) -> bool:
    try:
        return datetime.fromisoformat(str(after)) < datetime.fromisoformat(str(before))
    except (TypeError, ValueError):
        return True  # not both parseable: the server refuses them for another reason
