"""query: ``GET /files``, ``GET /files/{id}`` (cached, ETag), ``GET /files/{id}/logs``,
``GET /files/{id}/download`` and ``DELETE /files/{id}``."""

import functions_framework
from flask import Request, Response

from filepipe.query.api import api
from filepipe.web import start_function

start_function(api=api)


@functions_framework.http
def query(request: Request) -> Response:
    return api(request)
