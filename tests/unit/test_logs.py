"""JSON log lines: context fields, span ids and masked secrets."""

from __future__ import annotations

import io
import json
import logging

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from filepipe import logs, telemetry

URL = (
    "http://127.0.0.1:9000/uploads/t/f/doc.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIDEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=abcdef0123456789"
)


def test_redact_masks_signatures_tokens_keys_and_webhook_secrets() -> None:
    text = logs.redact(
        f'"PUT {URL} HTTP/1.1" 200 Authorization: Bearer fpk_s3cr3t whsec_c2VjcmV0 fpk_other'
    )
    for secret in ("abcdef0123456789", "AKIDEXAMPLE", "s3cr3t", "c2VjcmV0", "fpk_other"):
        assert secret not in text
    assert "X-Amz-Signature=***" in text and "X-Amz-Date=20260101T000000Z" in text


def test_records_carry_function_bound_fields_and_the_current_span() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "unit", stream=out)
    exporter = InMemorySpanExporter()
    with (
        telemetry.recording(exporter),
        logs.bound(tenant="acme"),
        telemetry.tracer().start_as_current_span("work") as span,
    ):
        logs.bind(file_id="f-1")
        logging.getLogger("filepipe.test").info("hello %s", "world", extra={"n": 1})
    logs.bind(tenant="leaked")  # outside any scope: ignored
    logging.getLogger("filepipe.test").info("outside")

    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["message"] == "hello world" and inside["level"] == "INFO"
    assert inside["logger"] == "filepipe.test" and inside["function"] == "unit"
    assert inside["tenant"] == "acme" and inside["file_id"] == "f-1" and inside["n"] == 1
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "tenant" not in outside and "trace_id" not in outside


def test_redact_masks_url_passwords_but_not_addresses() -> None:
    text = logs.redact(
        "connecting to postgresql://app:pg-s3cret@db:5432/x and amqp://guest:mq-s3cret@mq/%2F;"
        " mail ops@example.com, see http://host:8080/a@b"
    )
    assert "pg-s3cret" not in text and "mq-s3cret" not in text
    assert "postgresql://app:***@db:5432/x" in text and "amqp://guest:***@mq/%2F" in text
    assert "ops@example.com" in text and "http://host:8080/a@b" in text


def test_url_passwords_are_masked_in_messages_extras_and_exceptions() -> None:
    out = io.StringIO()
    logs.configure_logging("INFO", "unit", stream=out)
    log = logging.getLogger("filepipe.test")
    log.warning("cannot reach %s", "redis://:in-message@cache:6379/0")
    log.warning(
        "pool",
        extra={"dsn": "postgresql://app:in-extra@db/x", "nested": {"url": "amqps://u:in-dict@mq"}},
    )
    try:
        raise ConnectionError("connection to postgresql://app:in-exception@db/x failed")
    except ConnectionError:
        log.exception("database down")

    text = out.getvalue()
    for secret in ("in-message", "in-extra", "in-dict", "in-exception"):
        assert secret not in text
    message, extra, failure = (json.loads(line) for line in text.splitlines())
    assert message["message"] == "cannot reach redis://:***@cache:6379/0"
    assert extra["dsn"] == "postgresql://app:***@db/x"
    assert extra["nested"] == {"url": "amqps://u:***@mq"}
    assert "postgresql://app:***@db/x failed" in failure["exc_info"]
