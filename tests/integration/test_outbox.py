"""Publishing from the outbox never raises, even when PostgreSQL fails after the commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from filepipe.events import Publisher
from filepipe.files.outbox import publish
from tests.support.receiver import Receiver
from tests.support.waiting import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def unreachable_pool() -> Iterator[ConnectionPool]:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/none"
    with ConnectionPool(url, min_size=0, max_size=1, timeout=0.5, open=True) as pool:
        yield pool


def test_a_database_failure_after_commit_leaves_the_event_for_reconcile(
    unreachable_pool: ConnectionPool, event_receiver: Receiver
) -> None:
    published = publish(unreachable_pool, Publisher(event_receiver.url), ["some-id"])

    assert published == 0
    assert event_receiver.all_requests() == []
