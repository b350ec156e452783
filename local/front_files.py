"""The web page's files as ``local.front`` serves them (``local/nginx.conf`` does the same).

``GET /`` is ``index.html``; ``GET /<name>`` a file directly in the web directory (``web/``),
``GET /assets/…`` one under its ``assets/`` folder; ``HEAD`` too. Nothing else is served: no other
folder, no name starting with ``.``, nothing whose real path (symbolic links resolved) leaves the
directory. Paths are matched as the front normalised them (percent-decoded, ``..`` resolved, never
above the root). Answers carry the type of the file's extension and ``Cache-Control: no-cache``
(the page changes with the code; browsers revalidate), and stream the file in pieces.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from local.http1 import PIECE, encode

ASSETS = "assets"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
}
"""Content types by extension (the same on every machine, unlike ``mimetypes``)."""
OTHER_TYPE = "application/octet-stream"


class WebFiles:
    """The files of ``root`` the front may serve."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def find(self, path: str) -> Path | None:
        """The file that answers the normalised ``path``, or ``None``."""
        segments = path.strip("/").split("/") if path != "/" else ["index.html"]
        if len(segments) > 1 and segments[0] != ASSETS:
            return None
        if any(not segment or segment.startswith(".") or "\0" in segment for segment in segments):
            return None
        candidate = self.root.joinpath(*segments)
        try:
            real = candidate.resolve(strict=True)
        except OSError:
            return None
        return real if real.is_file() and real.is_relative_to(self.root) else None

    @staticmethod
    async def send(writer: asyncio.StreamWriter, method: str, file: Path) -> None:
        """Answer 200 with ``file`` (its head only for ``HEAD``)."""
        with file.open("rb") as content:
            left = size = os.fstat(content.fileno()).st_size
            headers = [
                ("Content-Type", TYPES.get(file.suffix.lower(), OTHER_TYPE)),
                ("Content-Length", str(size)),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
                ("Connection", "close"),
            ]
            writer.write(encode(("HTTP/1.1", "200", "OK"), headers))
            while method != "HEAD" and left and (piece := content.read(min(PIECE, left))):
                left -= len(piece)
                writer.write(piece)
                await writer.drain()
            await writer.drain()
