"""Live events over the WebSocket ``/ws``: the tenant's file events as they happen.

The API key goes in the ``Authorization`` header of the opening request (the gateway also takes
``?token=``, for browsers); ``file_id`` narrows the stream to one file. A refused opening is
raised like any API answer (401 → ``AuthenticationError``, …).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from urllib.parse import urlencode

from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI
from websockets.sync.client import connect

from filepipe_client._config import Config
from filepipe_client._errors import ConfigurationError, ConnectionFailed, api_error
from filepipe_client._models import Event

OPEN_TIMEOUT = 10.0


def stream_url(base: str, file_id: str | None = None) -> str:
    """The ``ws(s)://`` URL of ``/ws`` under the API's base URL."""
    scheme, rest = base.split("://", 1)
    query = f"?{urlencode({'file_id': file_id})}" if file_id else ""
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws{query}"


def events(
    config: Config, file_id: str | None = None, *, on_open: Callable[[], None] = lambda: None
) -> Iterator[Event]:
    """The events of ``config``'s tenant (of ``file_id`` only, if given) until the server
    closes the stream; ``on_open`` is called once it is open."""
    url = stream_url(config.url, file_id)
    try:
        connection = connect(
            url,
            additional_headers={"Authorization": f"Bearer {config.api_key}"},
            open_timeout=OPEN_TIMEOUT,
        )
    except InvalidStatus as exc:
        response = exc.response
        try:
            problem = json.loads(response.body or b"{}")
        except ValueError:
            problem = {}
        text = (response.body or b"").decode(errors="replace")
        raise api_error(
            response.status_code, problem if isinstance(problem, dict) else {}, text
        ) from exc
    except InvalidURI as exc:
        raise ConfigurationError(str(exc)) from exc
    except (OSError, TimeoutError) as exc:
        raise ConnectionFailed(config.url, str(exc) or type(exc).__name__) from exc
    with connection:
        on_open()
        try:
            for message in connection:
                yield Event.from_json(json.loads(message))
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 4401:
                raise api_error(401, {}, "the API key was revoked or expired") from exc
            raise ConnectionFailed(config.url, f"the event stream closed ({exc})") from exc
