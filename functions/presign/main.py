"""presign: ``POST /uploads`` creates a PENDING file and answers with a presigned upload URL."""

import functions_framework
from flask import Request, Response

from filepipe.http import handle
from filepipe.presign import ROUTES
from filepipe.startup import start_function

start_function()


@functions_framework.http
def presign(request: Request) -> Response:
    return handle(request, ROUTES)
