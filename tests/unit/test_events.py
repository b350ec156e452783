from __future__ import annotations

import uuid
from datetime import UTC, datetime

from cloudevents.conversion import to_binary

from filepipe.events import FILE_CREATED, FILE_PROCESSED, event_id
from filepipe.files.outbox import file_event
from filepipe.upload.create import object_key
from tests.support.rows import file_row

FILE = file_row()


def test_event_ids_are_stable_and_distinct_per_type_and_version() -> None:
    file_id = FILE.id
    assert event_id(file_id, 1, FILE_CREATED) == event_id(str(file_id), 1, FILE_CREATED)
    assert event_id(file_id, 1, FILE_CREATED) != event_id(file_id, 2, FILE_CREATED)
    assert event_id(file_id, 1, FILE_CREATED) != event_id(file_id, 1, FILE_PROCESSED)


def test_file_event_carries_the_required_data_in_binary_mode() -> None:
    event = file_event(
        FILE_CREATED,
        FILE,
        source="/filepipe/presign",
        time=datetime.now(UTC),
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    headers, body = to_binary(event.to_cloudevent())
    assert headers["ce-id"] == event_id(FILE.id, 1, FILE_CREATED)
    assert headers["ce-subject"] == str(FILE.id)
    assert headers["ce-traceparent"].startswith("00-0af7")
    assert b'"file_id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"' in body
    assert event.data["tenant"] == "acme" and event.data["version"] == 1
    assert event.data["status"] == "PENDING"


def test_object_keys_never_carry_user_input_unescaped() -> None:
    file_id = uuid.uuid4()
    assert object_key("acme", file_id, "report 2026.pdf") == f"acme/{file_id}/report_2026.pdf"
    assert object_key("acme", file_id, "..%2F..").startswith(f"acme/{file_id}/")
    assert "/" not in object_key("acme", file_id, "a\\b?c#d").split("/", 2)[2]
    assert object_key("acme", file_id, "...") == f"acme/{file_id}/file"
