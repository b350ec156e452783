"""notify: file events to webhooks and real time (``notify``); the webhook API (``webhooks``)."""

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request, Response

from filepipe.http import handle
from filepipe.notify_events import handle as handle_event
from filepipe.startup import start_function
from filepipe.webhooks import ROUTES

start_function()


@functions_framework.cloud_event
def notify(event: CloudEvent) -> None:
    handle_event(event)


@functions_framework.http
def webhooks(request: Request) -> Response:
    return handle(request, ROUTES)
