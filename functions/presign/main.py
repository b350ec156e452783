"""presign: ``POST /uploads`` creates a PENDING file and answers with a presigned upload URL or a
multipart upload; ``/uploads/{id}/...`` presigns, lists, completes and aborts its parts."""

import functions_framework
from flask import Request, Response

from filepipe.upload.api import api
from filepipe.upload.multipart import COMPLETION_BODY_BYTES
from filepipe.web import start_function

start_function(api=api, body_bytes_at_least=COMPLETION_BODY_BYTES)


@functions_framework.http
def presign(request: Request) -> Response:
    return api(request)
