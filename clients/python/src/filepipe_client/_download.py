"""Downloading a verified file: stream its presigned URL beside the target, check, rename.

The bytes go to a temporary file in the target's directory; only when their SHA-256 is the
file's verified one is it renamed into place (atomically), so a target never holds a partial
or altered download.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from filepipe_client._client import Client
from filepipe_client._errors import IntegrityError
from filepipe_client._models import File

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def safe_filename(name: str) -> str:
    """``name`` as a plain file name: NFKC, no separators or control characters, no leading
    dot (nothing hidden, no ``..``); ``download`` if nothing is left."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFKC", name)).strip().lstrip(".")
    return name[:255] or "download"


def target_path(file: File, output: Path | None) -> Path:
    """Where ``file`` goes: ``output``, or its safe name inside ``output`` (a directory) or
    the current directory."""
    if output is None:
        return Path.cwd() / safe_filename(file.filename)
    if output.is_dir():
        return output / safe_filename(file.filename)
    return output


def download(
    client: Client,
    file: File,
    target: Path,
    *,
    on_bytes: Callable[[int], None] = lambda _: None,
) -> Path:
    """Save ``file``'s bytes at ``target``; ``IntegrityError`` if they are not its SHA-256."""
    link = client.download_url(file.id)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as sink, client.fetch(link.url) as response:
            for piece in response.iter_bytes():
                sink.write(piece)
                digest.update(piece)
                on_bytes(len(piece))
        if digest.hexdigest() != file.sha256:
            raise IntegrityError(
                f"the bytes downloaded have SHA-256 {digest.hexdigest()}, not the file's"
                f" {file.sha256}; nothing was saved"
            )
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
