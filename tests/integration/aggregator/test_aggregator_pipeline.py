"""The executions pipeline in-process: failed flushes are re-read, never lost or doubled."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import asyncpg
import pytest

from services.aggregator import agents, sink
from services.aggregator.agents import ExecutionsPipeline
from services.aggregator.metrics import AggregatorMetrics
from services.aggregator.settings import AggregatorSettings
from shared.kafka import make_producer
from shared.topics import EXECUTIONS
from tests.integration.aggregator.generator import check_database, expected, make_stream, produce
from tests.integration.aggregator.harness import wait_committed
from tests.integration.assignment.helpers import eventually

pytestmark = pytest.mark.integration


async def test_failed_flushes_are_retried_from_postgresql(
    kafka_bootstrap: str, database_url: str, topics: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = make_stream(8000, seed=random.randrange(1 << 30), id_prefix=topics)
    await produce(
        kafka_bootstrap, EXECUTIONS.full_name(topics), [(r.key, r.value) for r in stream.records], 6
    )

    real = sink.flush_executions
    calls = {"n": 0}

    async def flaky(conn: asyncpg.Connection, **kwargs: Any) -> sink.FlushResult:
        calls["n"] += 1
        if calls["n"] in (1, 2):  # fail after doing most of the work: raw rows, merges, upserts
            async with conn.transaction():
                await real(conn, **kwargs)
                raise asyncpg.exceptions.SerializationError("injected failure before commit")
        return await real(conn, **kwargs)

    monkeypatch.setattr(agents.sink, "flush_executions", flaky)
    settings = AggregatorSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        database_url=database_url,
        topic_prefix=topics,
        aggregator_group_id=f"g-{uuid.uuid4().hex[:8]}",
        aggregator_flush_max_events=1500,
        aggregator_session_timeout_s=6,
        aggregator_max_event_bytes=65536,
    )
    metrics = AggregatorMetrics()
    pool = await sink.create_sink_pool(database_url)
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    pipeline = ExecutionsPipeline(settings, pool, producer, metrics)
    conn = await asyncpg.connect(database_url)
    try:
        await pipeline.start()
        await asyncio.wait_for(pipeline.ready.wait(), 30)
        await wait_committed(conn, settings.executions_topic, len(stream.records), 120)
        errors = await check_database(conn, stream, expected(stream))
        assert not errors, "\n".join(errors)
        assert metrics.flushes.labels("executions", "error")._value.get() == 2
        assert metrics.flushes.labels("executions", "ok")._value.get() >= 1

        async def healthy() -> bool:
            return bool(pipeline.health()["status"] == "ok")

        # its Kafka probe can time out while the loop catches up (briefly "degraded")
        assert await eventually(healthy, timeout=20), pipeline.health()
    finally:
        await pipeline.stop()
        await producer.stop()
        await pool.close()
        await conn.close()
