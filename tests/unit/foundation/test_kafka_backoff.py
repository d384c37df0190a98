"""shared.kafka.backoff_metadata_failures: a failed metadata update waits before the next.

aiokafka retries a failed metadata update at once while a partition's leader is unknown;
with the broker away that was a few thousand reconnects a second. The broker restart under
load is exercised for real in tests/reliability/faults/test_control_faults.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shared.kafka import backoff_metadata_failures, make_consumer, make_producer

pytestmark = pytest.mark.unit


class _Client:
    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls = 0

    async def _metadata_update(self, cluster_metadata: Any, topics: Any) -> bool:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


async def _spin(client: _Client, seconds: float) -> None:
    """What aiokafka's sender does with an unknown leader: ask again as soon as it fails."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        await client._metadata_update(None, None)


async def test_failed_updates_are_spaced_by_the_backoff() -> None:
    client = _Client([False])
    backoff_metadata_failures(client, 0.05)
    await _spin(client, 0.3)
    assert 2 <= client.calls <= 8  # unwrapped: tens of thousands in 0.3 s


async def test_successful_updates_do_not_wait() -> None:
    client = _Client([True])
    backoff_metadata_failures(client, 10.0)
    await asyncio.wait_for(_spin(client, 0.05), timeout=2.0)
    assert client.calls > 10


async def test_the_factories_wrap_their_clients() -> None:
    producer = make_producer("127.0.0.1:9")
    consumer = make_consumer("127.0.0.1:9", "t")
    for client in (producer.client, consumer._client):
        assert client._metadata_update.__name__ == "update_with_backoff"
