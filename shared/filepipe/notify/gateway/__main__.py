"""``python -m filepipe.notify.gateway``: run the WebSocket gateway."""

from __future__ import annotations

from filepipe.notify.gateway.server import main

main()
