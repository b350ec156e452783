"""Pure rules of reconcile: the id of a re-drive, the reason of a file given up."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from filepipe.files.model import Status
from filepipe.process.reconcile.unsettled import give_up_reason, redrive_id
from tests.support.rows import file_row


def test_a_redrive_id_is_stable_for_one_attempt_and_new_for_the_next() -> None:
    stuck = file_row(status=Status.UPLOADED, version=3)
    redriven = dataclasses.replace(stuck, checked_at=datetime(2026, 5, 1, tzinfo=UTC))

    assert redrive_id(stuck) == redrive_id(dataclasses.replace(stuck))
    assert len({redrive_id(stuck), redrive_id(redriven)}) == 2
    assert redrive_id(dataclasses.replace(stuck, version=4)) != redrive_id(stuck)


def test_a_file_given_up_names_how_long_it_waited_and_its_last_cause() -> None:
    now = datetime(2026, 5, 2, tzinfo=UTC)
    file = file_row(created_at=now - timedelta(seconds=90_061), error="storage returned 503")

    assert give_up_reason(file, now) == "gave up after 90061 s: storage returned 503"
    assert give_up_reason(dataclasses.replace(file, error=None), now) == (
        "gave up after 90061 s: no cause was recorded"
    )
