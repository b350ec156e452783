"""query: ``GET /files``, ``GET /files/{id}`` (cached, ETag) and ``GET /files/{id}/logs``."""

import functions_framework
from flask import Request, Response

from filepipe.http import handle
from filepipe.query_api import ROUTES
from filepipe.startup import start_function

start_function()


@functions_framework.http
def query(request: Request) -> Response:
    return handle(request, ROUTES)
