"""CloudEvents as the emulator stores and sends them: HTTP (binary/structured) ↔ AMQP ↔ HTTP binary.

An ``Envelope`` is a CloudEvent's context attributes and extensions as strings plus its data as
bytes, so data travels byte for byte. In RabbitMQ it is stored the way eventing-rabbitmq stores
events: attributes as message headers, ``datacontenttype`` as the content type, ``id`` as the
message id, the data as the body, persistent. Subscribers get HTTP binary content mode, values
beyond printable ASCII percent-encoded (CloudEvents HTTP binding 1.0:
https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md).
Dead letters carry the extensions Knative adds
(https://knative.dev/docs/eventing/event-delivery/#configuring-error-events):
``knativeerrordest`` (the subscriber URL), ``knativeerrorcode`` (last HTTP status, 0 when there
was no response) and ``knativeerrordata`` (the response body, base64, at most 1024 characters).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pika
from cloudevents.exceptions import GenericException
from cloudevents.http import from_http
from cloudevents.sdk.converters import is_binary

from local.broker.errors import InvalidEvent

ERROR_DEST = "knativeerrordest"
ERROR_CODE = "knativeerrorcode"
ERROR_DATA = "knativeerrordata"
ERROR_EXTENSIONS = (ERROR_DEST, ERROR_CODE, ERROR_DATA)
ERROR_DATA_MAX_LENGTH = 1024
_REQUIRED = ("id", "source", "type", "specversion")
_PERSISTENT = 2
_PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"%')


@dataclass(frozen=True)
class Envelope:
    attributes: Mapping[str, str]
    """Context attributes and extensions, ``datacontenttype`` included when set."""
    data: bytes = b""

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def type(self) -> str:
        return self.attributes["type"]

    def with_attributes(self, **extra: str) -> Envelope:
        return Envelope({**self.attributes, **extra}, self.data)

    def without(self, names: Iterable[str]) -> Envelope:
        dropped = set(names)
        kept = {key: value for key, value in self.attributes.items() if key not in dropped}
        return Envelope(kept, self.data)

    def http_headers(self) -> dict[str, str]:
        """Headers of this event in HTTP binary content mode (``ce-*`` and ``Content-Type``).

        The ``traceparent``/``tracestate`` extensions are also sent as the W3C trace headers so
        the subscriber's server span joins the publisher's trace.
        """
        headers = {
            f"ce-{name}": _header_value(value)
            for name, value in self.attributes.items()
            if name != "datacontenttype"
        }
        if "datacontenttype" in self.attributes:
            headers["Content-Type"] = _header_value(self.attributes["datacontenttype"])
        for name in ("traceparent", "tracestate"):
            if name in self.attributes:
                headers[name] = _header_value(self.attributes[name])
        return headers

    def amqp_properties(self) -> pika.BasicProperties:
        headers = {key: value for key, value in self.attributes.items() if key != "datacontenttype"}
        return pika.BasicProperties(
            headers=headers,
            content_type=self.attributes.get("datacontenttype"),
            message_id=self.id,
            delivery_mode=_PERSISTENT,
        )


def from_amqp(properties: pika.BasicProperties, body: bytes) -> Envelope:
    """The Envelope stored in a message published with ``Envelope.amqp_properties``."""
    attributes = {key: _text(value) for key, value in (properties.headers or {}).items()}
    if properties.content_type:
        attributes["datacontenttype"] = properties.content_type
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"message lacks CloudEvent attributes {missing}")
    return Envelope(attributes, body)


def parse_http(headers: Mapping[str, str], body: bytes) -> Envelope:
    """The CloudEvent of an HTTP request or response, in binary or structured content mode."""
    lowered = {key.lower(): value for key, value in headers.items()}
    binary = is_binary(lowered)
    try:
        event = from_http(lowered, body, data_unmarshaller=_raw if binary else None)
    except GenericException as exc:
        raise InvalidEvent(str(exc)) from exc
    attributes = {name: _text(value) for name, value in event.get_attributes().items()}
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"empty required attributes {missing}")
    if binary:
        return Envelope(attributes, body)
    return Envelope(attributes, _marshal(event.get_data(), attributes.get("datacontenttype")))


def is_cloudevent(headers: Mapping[str, str]) -> bool:
    """Whether an HTTP message with these headers carries a CloudEvent (either content mode)."""
    lowered = {key.lower(): value for key, value in headers.items()}
    content_type = lowered.get("content-type", "")
    return "ce-specversion" in lowered or content_type.startswith("application/cloudevents+")


def dead_letter(envelope: Envelope, *, destination: str, status: int, body: bytes) -> Envelope:
    """``envelope`` with the ``knativeerror*`` extensions of a failed delivery."""
    return envelope.with_attributes(
        **{ERROR_DEST: destination, ERROR_CODE: str(status), ERROR_DATA: error_data(body)}
    )


def error_data(body: bytes) -> str:
    """``knativeerrordata``: base64 of the response body, cut to 1024 characters as Knative does."""
    # 768 bytes encode to exactly 1024 base64 characters, so the value stays valid base64.
    return base64.b64encode(body[: ERROR_DATA_MAX_LENGTH * 3 // 4]).decode("ascii")


def _header_value(value: str) -> str:
    """``value`` as an HTTP header value, percent-encoded as the CloudEvents HTTP binding says
    when it holds anything but printable ASCII (plain ASCII values go as they are)."""
    if all(" " <= char <= "~" for char in value):
        return value
    return quote(value, safe=_PRINTABLE_ASCII)


def _raw(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


def _marshal(data: Any, content_type: str | None) -> bytes:
    """Bytes of structured-mode ``data`` (already decoded by the SDK) for binary mode."""
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and not _is_json(content_type):
        return data.encode()
    return json.dumps(data).encode()


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
