"""The real-time WebSocket gateway: ``GET /ws`` streams a tenant's file events as they happen.

Clients authenticate with an API key during the opening handshake and receive each event as a
text frame of structured-mode CloudEvents JSON (CloudEvents 1.0 JSON format), optionally only
those of one file (``?file_id=``). A client with an upload token (``filepipe.upload_tokens``)
receives only the events of the files made with it, until the token expires. Events come from
Redis pub/sub (``filepipe.realtime``). Run it with ``python -m filepipe.notify.gateway
[--port 8086]``.

- ``handshake``: parsing the request, the HTTP refusals (404, 403 for a browser ``Origin`` not
  allowed, 401, 400, 429 over the per-tenant cap, 503)
- ``hub``: in-process fan-out with a bounded queue per client (a client that falls behind is
  closed with 1013)
- ``sessions``: connections by tenant (the cap) and by API key (a revoked or expired key's
  connections are closed with 4401)
- ``server``: the websockets server, the Redis reader (events and key revocations), start-up
  and shutdown
"""

from __future__ import annotations

from filepipe.notify.gateway.server import Gateway, main, run

__all__ = ["Gateway", "main", "run"]
