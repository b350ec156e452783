"""``python -m filepipe.gateway``: run the WebSocket gateway."""

from __future__ import annotations

from filepipe.gateway.server import main

main()
