"""The rules of multipart uploads (pure: no I/O): the part plan and the bodies of the part routes.

S3's numbers (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html): at most
10,000 parts, each 5 MiB to 5 GiB but the last (which may be smaller), objects up to 5 TiB, and
at most 5 GiB in one PUT. A file of ``size`` bytes in parts of ``part_size`` has
``ceil(size / part_size)`` parts; every part but the last is exactly ``part_size`` long.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from filepipe.config import S3_PART_SIZES, S3_SINGLE_PUT_LIMIT
from filepipe.errors import BadRequest, PayloadTooLarge
from filepipe.multipart_storage import StoredPart

MAX_PARTS = 10_000
MIN_PART_SIZE, MAX_PART_SIZE = S3_PART_SIZES
MAX_PARTS_PER_REQUEST = 1000
"""Part URLs one ``POST /uploads/{id}/parts`` presigns."""
MIB = 1024**2
COMPLETION_BODY_BYTES = MIB
"""The request body limit of the presign function: a completion listing 10,000 parts with
S3's quoted 32-hex ETags is about 620 KB, above ``FILEPIPE_MAX_REQUEST_BYTES``' default."""
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class PartPlan:
    size: int
    part_size: int

    @property
    def part_count(self) -> int:
        return -(-self.size // self.part_size)

    def part_length(self, number: int) -> int:
        """The exact length of part ``number`` (1-based)."""
        return min(self.part_size, self.size - (number - 1) * self.part_size)


@dataclass(frozen=True)
class PartRequest:
    """A valid ``POST /uploads/{id}/parts`` body."""

    numbers: tuple[int, ...]
    sha256: Mapping[int, str]
    """Part number → lower-case hex digest, for the parts given one."""


@dataclass(frozen=True)
class Completion:
    """A valid ``POST /uploads/{id}/complete`` body (not yet checked against storage)."""

    parts: tuple[tuple[int, str], ...]
    """``(number, etag)`` in the order given."""
    sha256: str | None


def plan(
    size: int,
    *,
    multipart: bool | None,
    part_size: int | None,
    threshold: int,
    default_part_size: int,
) -> PartPlan | None:
    """The part plan of an upload, or None for a single PUT; a 400 or 413 when it can't be.

    ``multipart`` absent means multipart from ``threshold`` bytes on. The default part size is
    raised to ``ceil(size / 10000)`` rounded up to a MiB; an explicit one that needs more than
    10,000 parts is a 400.
    """
    chosen = multipart if multipart is not None else size >= threshold
    if not chosen:
        if part_size is not None:
            raise _invalid("part_size", "only for a multipart upload (multipart: true)")
        if size > S3_SINGLE_PUT_LIMIT:
            raise PayloadTooLarge(
                f"size {size} is over {S3_SINGLE_PUT_LIMIT} bytes, the most one PUT takes;"
                " use a multipart upload (multipart: true)",
                max_size=S3_SINGLE_PUT_LIMIT,
            )
        return None
    if part_size is None:
        needed = -(-size // MAX_PARTS)
        return PartPlan(size, max(default_part_size, -(-needed // MIB) * MIB))
    result = PartPlan(size, part_size)
    if result.part_count > MAX_PARTS:
        raise _invalid(
            "part_size",
            f"gives {result.part_count} parts; at most {MAX_PARTS}"
            f" (at least {-(-size // MAX_PARTS)} bytes a part)",
        )
    return result


def part_size_of(value: Any) -> int | None:
    """``value`` as a part size (an integer of 5 MiB to 5 GiB), or None if it is not one."""
    number = _as_int(value)
    return number if number is not None and MIN_PART_SIZE <= number <= MAX_PART_SIZE else None


def parse_part_request(body: Mapping[str, Any]) -> PartRequest:
    """The part numbers (1-1000 of them, unique, each 1-10,000) and their digests."""
    errors: list[dict[str, str]] = []
    for unknown in sorted(set(body) - {"part_numbers", "sha256"}):
        errors.append({"field": unknown[:80], "message": "unknown field"})
    listed = body.get("part_numbers")
    numbers = [_as_int(n) for n in listed] if isinstance(listed, list) else []
    if (
        not 1 <= len(numbers) <= MAX_PARTS_PER_REQUEST
        or not all(n is not None and 1 <= n <= MAX_PARTS for n in numbers)
        or len(set(numbers)) != len(numbers)
    ):
        errors.append(
            {
                "field": "part_numbers",
                "message": f"required, 1-{MAX_PARTS_PER_REQUEST} unique integers from 1 to"
                f" {MAX_PARTS}",
            }
        )
    digests = body.get("sha256", {})
    sha256: dict[int, str] = {}
    if not isinstance(digests, dict):
        errors.append({"field": "sha256", "message": "must map part numbers to SHA-256 digests"})
        digests = {}
    for name, digest in digests.items():
        field = f"sha256.{name}"[:80]
        if not (name.isascii() and name.isdigit()) or int(name) not in numbers:
            errors.append({"field": field, "message": "must be one of part_numbers"})
        elif not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            errors.append({"field": field, "message": "must be 64 hexadecimal characters"})
        else:
            sha256[int(name)] = digest.lower()
    if errors:
        raise BadRequest("the parts request is invalid", errors=errors)
    return PartRequest(tuple(n for n in numbers if n is not None), sha256)


def check_part_numbers(request: PartRequest, part_count: int) -> None:
    """A 400 if a requested part is past the upload's last one."""
    beyond = [n for n in request.numbers if n > part_count]
    if beyond:
        message = f"the upload has parts 1 to {part_count}; not {_numbers(beyond)}"
        errors = [{"field": "part_numbers", "message": message}]
        raise BadRequest("the parts request is invalid", errors=errors)


def parse_completion(body: Mapping[str, Any]) -> Completion:
    """The listed parts (``{number, etag}`` objects) and the optional whole-object SHA-256."""
    errors: list[dict[str, str]] = []
    for unknown in sorted(set(body) - {"parts", "sha256"}):
        errors.append({"field": unknown[:80], "message": "unknown field"})
    listed = body.get("parts")
    parts: list[tuple[int, str]] = []
    if not isinstance(listed, list) or not 1 <= len(listed) <= MAX_PARTS:
        errors.append({"field": "parts", "message": f"required, 1-{MAX_PARTS} parts"})
        listed = []
    for index, part in enumerate(listed):
        number = _as_int(part.get("number")) if isinstance(part, dict) else None
        if (
            not isinstance(part, dict)
            or set(part) != {"number", "etag"}
            or number is None
            or not 1 <= number <= MAX_PARTS
            or not isinstance(part["etag"], str)
            or not 1 <= len(part["etag"]) <= 128
        ):
            errors.append(
                {
                    "field": f"parts[{index}]",
                    "message": f"must be {{number: 1-{MAX_PARTS}, etag: string}}",
                }
            )
        else:
            parts.append((number, part["etag"]))
    sha256 = body.get("sha256")
    if "sha256" in body and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
        errors.append({"field": "sha256", "message": "must be 64 hexadecimal characters"})
    if errors:
        raise BadRequest("the completion request is invalid", errors=errors)
    return Completion(tuple(parts), sha256.lower() if isinstance(sha256, str) else None)


def completion_errors(
    completion: Completion, stored: Sequence[StoredPart], part_plan: PartPlan | None
) -> list[dict[str, str]]:
    """Every way the listed and stored parts fail to make the file (none: they do): the plan's
    parts and declared size, or without a plan (parts the client sized) parts contiguous from 1,
    each but the last at least ``MIN_PART_SIZE``."""
    errors: list[dict[str, str]] = []
    numbers = [number for number, _ in completion.parts]
    count = part_plan.part_count if part_plan else len(numbers)
    expected = range(1, count + 1)
    if numbers != list(expected):
        missing = sorted(set(expected) - set(numbers))
        extra = sorted({n for n in numbers if n not in expected})
        message = f"must list parts 1 to {count} once each, in order"
        if missing:
            message += f"; missing: {_numbers(missing)}"
        if extra:
            message += f"; not in this upload: {_numbers(extra)}"
        errors.append({"field": "parts", "message": message})
    by_number = {part.number: part for part in stored}
    not_uploaded = [n for n in expected if n not in by_number]
    if not_uploaded:
        errors.append({"field": "parts", "message": f"not uploaded: {_numbers(not_uploaded)}"})
    for number, etag in completion.parts:
        found = by_number.get(number)
        if found is not None and _bare(found.etag) != _bare(etag):
            errors.append({"field": f"parts.{number}.etag", "message": "differs from the stored"})
    for part in stored:
        if part.number not in expected:
            continue
        if part_plan is not None and part.size != part_plan.part_length(part.number):
            length = part_plan.part_length(part.number)
            message = f"is {part.size} bytes, {length} expected"
            errors.append({"field": f"parts.{part.number}.size", "message": message})
        elif part_plan is None and part.number < count and part.size < MIN_PART_SIZE:
            message = f"is {part.size} bytes; all but the last part need {MIN_PART_SIZE} or more"
            errors.append({"field": f"parts.{part.number}.size", "message": message})
    total = completed_size(stored, count)
    if part_plan is not None and total != part_plan.size:
        message = f"parts add up to {total} bytes, {part_plan.size} declared"
        errors.append({"field": "size", "message": message})
    return errors


def completed_size(stored: Sequence[StoredPart], count: int) -> int:
    """The bytes of stored parts 1 to ``count``: the object's size once they are completed."""
    return sum(part.size for part in stored if 1 <= part.number <= count)


def _invalid(field: str, message: str) -> BadRequest:
    errors = [{"field": field, "message": message}]
    return BadRequest("the upload request is invalid", errors=errors)


def _as_int(value: Any) -> int | None:
    """``value`` as an integer (JSON's 1.0 is the integer 1), or None if it is not one."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bare(etag: str) -> str:
    return etag.strip().strip('"')


def _numbers(numbers: Sequence[int]) -> str:
    shown = ", ".join(map(str, numbers[:20]))
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")
