"""presign: ``POST /uploads`` creates a PENDING file and answers with a presigned upload URL."""

import functions_framework
from flask import Request, Response

from filepipe.upload.api import api
from filepipe.web import start_function

start_function()


@functions_framework.http
def presign(request: Request) -> Response:
    return api(request)
