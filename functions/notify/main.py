"""notify: file events to webhooks and real time (``notify``); the webhook API (``webhooks``)."""

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request, Response

from filepipe.notify.handler import handle
from filepipe.notify.webhooks.api import api
from filepipe.web import start_function

start_function(api=api, internal={"notify"})


@functions_framework.cloud_event
def notify(event: CloudEvent) -> None:
    handle(event)


@functions_framework.http
def webhooks(request: Request) -> Response:
    return api(request)
