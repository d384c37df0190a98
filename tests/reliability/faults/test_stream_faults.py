"""The broker and the database restart while execution events stream in.

An idempotent producer (``acks=all``, re-sending a chunk whose delivery failed) writes
a generated stream (valid events, exact duplicates, a few invalid records) to the
private stack's executions topic; once a third is acknowledged, the fault happens; the
stack's own aggregator keeps running through it. Afterwards, once the aggregator's
committed offsets reach the end of the topic, every aggregate in PostgreSQL must equal
the exact sums of the distinct valid events (``check_database`` of the aggregator's
integration tests: counts, successes, duration and risk sums, sketches, raw rows), and
every service must report ``ok`` again.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from shared.topics import EXECUTIONS
from tests.integration.aggregator.generator import check_database, expected, make_stream
from tests.reliability.faults.stack import LONG, PrivateStack
from tests.reliability.faults.streams import (
    end_offsets,
    produce_through_faults,
    wait_aggregated,
    wait_all_ok,
)

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

EVENTS = 60_000 if LONG else 12_000
RATE = 2_000.0 if LONG else 1_000.0


async def stream_through_fault(
    stack: PrivateStack, name: str, fault: Callable[[], dict[str, float]]
) -> str:
    seed = random.randrange(1 << 30)
    stream = make_stream(EVENTS, seed=seed, too_late=0, id_prefix=f"{name}-{uuid.uuid4().hex[:6]}-")
    records = [(r.key, r.value) for r in stream.records]
    topic = EXECUTIONS.full_name()
    progress = [0]
    producing = asyncio.create_task(
        produce_through_faults(stack.bootstrap, topic, records, rate=RATE, progress=progress)
    )
    while progress[0] < len(records) // 3 and not producing.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    at = progress[0]
    timings = await asyncio.to_thread(fault)
    stats = await producing
    assert at < len(records), "the fault came after the stream"
    ends = await end_offsets(stack.bootstrap, topic)
    caught_up = await wait_aggregated(stack.database_url, topic, ends, timeout=240)
    want = expected(stream)
    conn = await asyncpg.connect(stack.database_url)
    try:
        errors = await check_database(conn, stream, want)
    finally:
        await conn.close()
    assert not errors, f"seed {seed}:\n" + "\n".join(errors[:30])
    recovered = await wait_all_ok(stack)
    summary = (
        f"{name}: {len(records):,} records ({want.distinct:,} distinct valid) at "
        f"{RATE:,.0f}/s, fault after {at:,} acknowledged ("
        + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        + f"); producer re-sent {stats.resent_chunks} chunk(s); aggregates exact "
        f"{caught_up:.1f}s after the last record; all services ok again after "
        f"{max(recovered.values()):.1f}s (seed {seed})"
    )
    print("\n" + summary)
    return summary


async def test_kafka_restart_during_stream(
    private_stack: PrivateStack, reliability_summary: list[str]
) -> None:
    def restart() -> dict[str, float]:
        stopped = private_stack.stop_kafka()
        # while the broker is away the aggregator says so (its probe runs every 2 s)
        down_since = time.monotonic()
        noticed = None
        while time.monotonic() - down_since < 15:
            executions = _aggregator_health(private_stack)["components"]["executions"]
            if executions["kafka"] == "unreachable":
                assert executions["status"] == "degraded", executions
                noticed = time.monotonic() - down_since
                break
            time.sleep(0.2)
        assert noticed is not None, "the aggregator did not report the broker away"
        time.sleep(max(0.0, 2.0 - noticed))
        down = time.monotonic() - down_since
        return {"stop": stopped, "health degraded": noticed, "down": down,
                "start": private_stack.start_kafka()}  # fmt: skip

    reliability_summary.append(await stream_through_fault(private_stack, "kafka-restart", restart))


def _aggregator_health(stack: PrivateStack) -> dict[str, Any]:
    with urllib.request.urlopen(stack.url("aggregator") + "/health", timeout=3) as resp:
        body: dict[str, Any] = json.loads(resp.read())
    return body


async def test_kafka_sigkill_during_stream(
    private_stack: PrivateStack, reliability_summary: list[str]
) -> None:
    def crash() -> dict[str, float]:
        stopped = private_stack.stop_kafka(kill=True)
        time.sleep(5.0)
        return {"kill": stopped, "down": 5.0, "start": private_stack.start_kafka()}

    reliability_summary.append(await stream_through_fault(private_stack, "kafka-sigkill", crash))


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_postgres_restart_during_stream(
    private_stack: PrivateStack, reliability_summary: list[str], mode: str
) -> None:
    down = 8.0 if LONG else 4.0

    def restart() -> dict[str, float]:
        stopped = private_stack.stop_postgres(mode=mode)
        time.sleep(down)
        return {f"stop -m {mode}": stopped, "down": down, "start": private_stack.start_postgres()}

    reliability_summary.append(
        await stream_through_fault(private_stack, f"postgres-{mode}-restart", restart)
    )
