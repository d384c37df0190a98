"""Freshness: from producing a new config revision to the service answering with it
(p95 over 100 changes < 1 s)."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.kafka import make_producer
from shared.topics import CONFIG
from tests.unit.serving.builders import three_arm

from .helpers import publish, running, settings

pytestmark = pytest.mark.integration

CHANGES = 100


async def test_new_revisions_are_served_within_a_second(kafka_bootstrap: str, topics: str) -> None:
    await publish(kafka_bootstrap, topics, three_arm(revision=1))
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    delays: list[float] = []
    try:
        async with running(settings(kafka_bootstrap, topics)) as replica:
            assert (await replica.assign("checkout", "u"))["revision"] == 1
            for revision in range(2, CHANGES + 2):
                cfg = three_arm(0.5 + (revision % 2) * 0.5, revision=revision)
                t0 = time.perf_counter()
                await producer.send(
                    CONFIG.full_name(topics),
                    key=str(cfg.schema_id).encode(),
                    value=cfg.model_dump_json().encode(),
                )
                while (await replica.assign("checkout", "u"))["revision"] != revision:
                    if time.perf_counter() - t0 > 5:
                        pytest.fail(f"revision {revision} not served after 5 s")
                    await asyncio.sleep(0.001)
                delays.append(time.perf_counter() - t0)
    finally:
        await producer.stop()
    delays.sort()
    p50, p95 = delays[len(delays) // 2], delays[int(0.95 * len(delays)) - 1]
    print(
        f"\nconfig freshness over {CHANGES} changes: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
    )
    assert p95 < 1.0
