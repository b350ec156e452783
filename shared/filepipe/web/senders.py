"""Who may call an internal target (process, notify): only the broker.

The local broker emulator sends ``X-Filepipe-Event-Token`` with the shared secret
``FILEPIPE_EVENT_TOKEN`` on every delivery; an internal target refuses any request without it
(401 problem+json) before the event is parsed. On Knative, where the RabbitMQ broker sends no
custom header, the same guarantee comes from Knative Eventing's OIDC sender identity and
EventPolicies (``knative/README.md``), and the token is left unset. Unset, a target accepts any
sender and says so in its log at start-up: development only.
"""

from __future__ import annotations

import hmac
import logging

from flask import Flask, Response, request

from filepipe.config import EVENT_TOKEN
from filepipe.errors import Unauthorized
from filepipe.web.problems import problem_response

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Filepipe-Event-Token"  # noqa: S105 - a header name


def require_broker(app: Flask, token: str | None) -> None:
    """Make ``app`` refuse every request that does not carry the broker's ``token``."""
    if token is None:
        log.warning(
            "%s is not set: %s accepts events from any sender (development only)",
            EVENT_TOKEN,
            app.name,
        )
        return
    expected = token.encode()

    def check_sender() -> Response | None:
        sent = request.headers.get(TOKEN_HEADER, "").encode()
        if hmac.compare_digest(sent, expected):
            return None
        log.warning("event refused: not from the broker", extra={"path": request.path})
        return problem_response(
            Unauthorized(f"only the broker may send events here ({TOKEN_HEADER})"), request.path
        )

    app.before_request(check_sender)
