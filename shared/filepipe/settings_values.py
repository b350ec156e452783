"""How the settings' values are read and checked: parsing environment text into typed values, the
type check of values given to ``Settings``, and the pure predicates and patterns of the rules
``filepipe.config`` applies. It names no environment variable (``filepipe.config`` does)."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable

from filepipe.errors import ConfigError


def parse(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation).removesuffix(" | None")
    if kind == "str":
        return raw
    if kind == "bool":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")
    if kind == "int":
        if not re.fullmatch(r"[+-]?[0-9]+", raw):
            raise ConfigError(f"{name}={raw!r} is not a whole number (digits only, e.g. 1000)")
        return int(raw)
    if kind == "float":
        return parse_float(name, raw)
    if kind == "tuple[str, ...]":
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if kind == "tuple[float, ...]":
        return tuple(parse_float(name, item.strip()) for item in raw.split(",") if item.strip())
    raise TypeError(f"Settings has no parser for {annotation}")


def parse_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw!r} is not a finite number")
    return value


def is_str(value: object) -> bool:
    return isinstance(value, str)


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def tuple_of(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, tuple) and all(map(check, value))


KINDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "str": ("a string", is_str),
    "bool": ("a boolean", lambda value: isinstance(value, bool)),
    "int": ("a whole number", is_int),
    "float": ("a number", is_number),
    "tuple[str, ...]": ("a tuple of strings", tuple_of(is_str)),
    "tuple[float, ...]": ("a tuple of numbers", tuple_of(is_number)),
}
"""Each field type: how errors describe it, and the check of a value given to the constructor."""


def positive(seconds: float) -> bool:
    return math.isfinite(seconds) and seconds > 0


def non_negative(seconds: float) -> bool:
    return math.isfinite(seconds) and seconds >= 0


def retry_delay(seconds: float) -> bool:
    return math.isfinite(seconds) and 0 <= seconds < 7 * 24 * 3600


PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")


def port_range(entry: str) -> tuple[int, int] | None:
    """A ``FILEPIPE_WEBHOOK_PORTS`` entry (``443`` or ``8000-8999``) as an inclusive range, or
    None if it is not one of TCP ports (1-65535, low before high)."""
    match = PORT_RANGE.fullmatch(entry)
    if match is None:
        return None
    low = int(match[1])
    high = int(match[2] or low)
    return (low, high) if 1 <= low <= high <= 65535 else None


def fernet_key(key: str) -> bool:
    """Whether ``key`` is a Fernet key (URL-safe base64 of 32 bytes), checked without using it."""
    if len(key) != 44 or not re.fullmatch(r"[A-Za-z0-9_-]{43}=", key):
        return False
    return len(base64.urlsafe_b64decode(key)) == 32


def token(value: str | None) -> bool:
    return value is None or (value != "" and not any(c.isspace() for c in value))


MEDIA_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
MEDIA_RANGE = re.compile(rf"\*/\*|{MEDIA_NAME}/(?:\*|{MEDIA_NAME})")
"""RFC 6838 section 4.2 restricted names (lower case: they are normalized), or ``*`` wildcards."""
BUCKET = re.compile(
    r"(?!.*(?:\.\.|\.-|-\.))(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
)
RESERVED = re.compile(
    r"^(?:xn--|sthree-|amzn-s3-demo-)|(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$"
)
S3_RULE = (
    "must be an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and"
    " ending with a letter or digit, no '..', '.-' or '-.', not an IP address, no reserved"
    " prefix (xn--, sthree-, amzn-s3-demo-) or suffix (-s3alias, --ol-s3, .mrap, --x-s3,"
    " --table-s3)"
)
"""https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html; MinIO also
refuses a '.' next to a '-'."""
REGION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
EXCHANGE = re.compile(r"[A-Za-z0-9_.:-]{1,255}")
