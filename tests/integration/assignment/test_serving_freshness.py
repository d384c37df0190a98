"""Freshness: every new config revision produced to the topic is served by the service;
the delay from producing it to the service answering with it is reported (p50/p95/max
over 100 changes, "serving timings" summary). Speed is the benchmarks' business: only a
generous sanity bound is asserted, so that a loaded CI machine cannot fail the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from shared.kafka import make_producer
from shared.topics import CONFIG
from tests.unit.serving.builders import three_arm

from .helpers import publish, running, settings

pytestmark = pytest.mark.integration

CHANGES = 100
SERVED_WITHIN_S = 30.0
"""Deadline per revision: one not served by then is lost (a defect), not slow."""
POLL_S = 0.02
"""Between probes: the probes run on the loop that must also consume the config."""
SANE_P95_S = 5.0
"""Sanity bound (the target is 1 s): fails on a broken follower, not on a loaded machine."""


async def test_new_revisions_are_all_served_and_the_delay_is_reported(
    kafka_bootstrap: str, topics: str, report: Callable[[str], None]
) -> None:
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
                    if time.perf_counter() - t0 > SERVED_WITHIN_S:
                        pytest.fail(f"revision {revision} not served after {SERVED_WITHIN_S:.0f} s")
                    await asyncio.sleep(POLL_S)
                delays.append(time.perf_counter() - t0)
    finally:
        await producer.stop()
    delays.sort()
    p50, p95 = delays[len(delays) // 2], delays[int(0.95 * len(delays)) - 1]
    report(
        f"config freshness over {CHANGES} changes (polled every {POLL_S * 1000:.0f} ms): "
        f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms"
    )
    assert p95 < SANE_P95_S, f"p95 {p95:.2f} s: revisions reach the snapshot far too slowly"
