"""Per-endpoint slots: a claim skips the endpoints whose slots are all taken, and a released
slot can be taken again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from filepipe.notify.webhooks.lanes import EndpointSlots


@dataclass(frozen=True)
class Row:
    endpoint_id: uuid.UUID


def test_a_saturated_endpoint_is_skipped_until_a_slot_is_released() -> None:
    slots = EndpointSlots()
    slow, other = uuid.uuid4(), uuid.uuid4()
    skipped: list[list[uuid.UUID]] = []

    def claim_of(endpoint_id: uuid.UUID) -> Row | None:
        def claim(saturated: list[uuid.UUID]) -> Row | None:
            skipped.append(saturated)
            return None if endpoint_id in saturated else Row(endpoint_id)

        return slots.take(2, claim)

    assert claim_of(slow) == Row(slow)
    assert claim_of(slow) == Row(slow)
    assert claim_of(slow) is None
    assert claim_of(other) == Row(other)
    assert skipped == [[], [], [slow], [slow]]

    slots.release(slow)
    assert claim_of(slow) == Row(slow)
    assert skipped[-1] == []


def test_nothing_claimed_takes_no_slot() -> None:
    slots = EndpointSlots()
    seen: list[list[uuid.UUID]] = []

    def nothing(saturated: list[uuid.UUID]) -> Row | None:
        seen.append(saturated)
        return None

    for _ in range(3):
        assert slots.take(1, nothing) is None
    assert seen == [[], [], []]
