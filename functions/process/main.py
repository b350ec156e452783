"""process: verifies uploaded objects (MinIO notifications), handles dead letters, reconciles."""

import functions_framework
from cloudevents.http import CloudEvent

from filepipe.process.handler import handle
from filepipe.web import start_function

start_function(internal={"process"})


@functions_framework.cloud_event
def process(event: CloudEvent) -> None:
    handle(event)
