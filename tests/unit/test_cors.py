"""``filepipe.web.cors`` around a plain WSGI app: ``Vary`` keeps what the app said."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from werkzeug.test import Client

from filepipe.origins import AllowedOrigins
from filepipe.web.cors import Cors


def answering(vary: str | None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Vary", vary)] if vary is not None else [])
        return [b"ok"]

    return app


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        (None, "Origin"),
        ("Accept-Encoding", "Accept-Encoding, Origin"),
        ("origin", "origin"),
        ("*", "*"),
    ],
)
def test_vary_names_origin_once(vary: str | None, expected: str) -> None:
    cors = Cors(answering(vary), origins=AllowedOrigins(["*"]), methods_of=lambda _: ())
    response = Client(cors).get("/", headers={"Origin": "https://app.example.com"})
    assert response.headers.getlist("Vary") == [expected]
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
