"""SIGKILL the worker mid-stream, restart, rebalance: the aggregates stay exact."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared.topics import DEAD_LETTER, EXECUTIONS, EXPOSURES
from tests.integration.aggregator.generator import (
    Stream,
    check_database,
    check_exposures,
    expected,
    expected_exposures,
    make_stream,
    produce,
    read_dead_letters,
)
from tests.integration.aggregator.harness import (
    WorkerProcess,
    committed,
    wait_committed,
    worker_env,
)

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("AGGREGATOR_TEST_EVENTS", "50000"))


async def _produce_slowly(
    bootstrap: str, prefix: str, stream: Stream, chunks: int, pause: float
) -> None:
    """The stream in ``chunks`` pieces, ``pause`` seconds apart (order kept per partition)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=1024 * 1024,
    )
    await producer.start()
    try:
        records = [(r.key, r.value) for r in stream.records]
        step = -(-len(records) // chunks)
        exposures = stream.exposures
        estep = -(-len(exposures) // chunks) if exposures else 0
        for i in range(chunks):
            await produce(
                bootstrap,
                EXECUTIONS.full_name(prefix),
                records[i * step : (i + 1) * step],
                6,
                producer=producer,
            )
            if estep:
                await produce(
                    bootstrap,
                    EXPOSURES.full_name(prefix),
                    exposures[i * estep : (i + 1) * estep],
                    6,
                    producer=producer,
                )
            await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def _verify(conn: asyncpg.Connection, bootstrap: str, prefix: str, stream: Stream) -> None:
    exp = expected(stream)
    errors = await check_database(conn, stream, exp)
    assert not errors, "\n".join(errors)
    # dead letters: at least once to Kafka, exactly once per source record
    dlq = await read_dead_letters(
        bootstrap,
        DEAD_LETTER.full_name(prefix),
        sum(exp.dead_letters.values()) + stream.bad_exposures,
        timeout=20,
    )
    letters = {
        (d["partition"], d["offset"]): d["error_code"]
        for d in dlq
        if d["source_topic"] == EXECUTIONS.full_name(prefix)
    }
    assert Counter(letters.values()) == exp.dead_letters
    if stream.exposures:
        want = len(expected_exposures(stream))
        for _ in range(150):
            n = await conn.fetchval(
                "SELECT count(*) FROM experiment_exposures WHERE experiment_id = ANY($1::uuid[])",
                list(stream.universe.experiments),
            )
            if n >= want:
                break
            await asyncio.sleep(0.2)
        assert not await check_exposures(conn, stream)


async def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    kafka_bootstrap: str, database_url: str, topics: str, tmp_path: Path
) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    stream = make_stream(EVENTS, seed=seed, exposures=EVENTS // 20, id_prefix=topics)
    topic = EXECUTIONS.full_name(topics)
    conn = await asyncpg.connect(database_url)
    worker = WorkerProcess(
        "w-crash",
        worker_env(
            bootstrap=kafka_bootstrap,
            database_url=database_url,
            prefix=topics,
            group=f"g-{uuid.uuid4().hex[:8]}",
            AGGREGATOR_FLUSH_MAX_EVENTS="4000",
        ),
        tmp_path,
    )
    kills: list[tuple[int, int]] = []
    try:
        producing = asyncio.create_task(
            _produce_slowly(kafka_bootstrap, topics, stream, chunks=30, pause=1.0)
        )
        worker.start()
        await worker.wait_ready()
        while not producing.done():
            # let the worker commit something after its (re)start, then kill it at a random moment
            base = await committed(conn, topic)
            for _ in range(300):
                if await committed(conn, topic) > base or (
                    producing.done() and base >= len(stream.records)
                ):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            before = await committed(conn, topic)
            worker.kill()
            kills.append((before, await committed(conn, topic)))
            worker.start()
            await worker.wait_ready()
            if len(kills) >= 5:
                break
        await producing
        started = time.monotonic()
        await wait_committed(conn, topic, len(stream.records), 300, [worker])
        print(
            f"\nseed {seed}: {len(stream.records):,} records, SIGKILLs at committed offsets "
            f"{[k[0] for k in kills]}; caught up {time.monotonic() - started:.1f}s after the last restart"
        )
        mid_stream = [k for k in kills if 0 < k[0] < len(stream.records)]
        assert len(mid_stream) >= 3, f"only {len(mid_stream)} kills landed mid-stream: {kills}"
        await _verify(conn, kafka_bootstrap, topics, stream)
        assert (
            await conn.fetchval(
                "SELECT sum(events_counted) FROM aggregator_offsets WHERE topic = $1", topic
            )
            == expected(stream).distinct
        )
    finally:
        worker.stop()
        await conn.close()


async def test_two_workers_share_partitions_and_survive_one_being_killed(
    kafka_bootstrap: str, database_url: str, topics: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    stream = make_stream(EVENTS, seed=seed, exposures=EVENTS // 20, id_prefix=topics)
    topic = EXECUTIONS.full_name(topics)
    group = f"g-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    env = worker_env(
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        prefix=topics,
        group=group,
        AGGREGATOR_FLUSH_MAX_EVENTS="4000",
    )
    a = WorkerProcess("w-a", env, tmp_path)
    b = WorkerProcess("w-b", env, tmp_path)
    try:
        a.start()
        b.start()
        await a.wait_ready()
        await b.wait_ready()
        # both own partitions once the group has settled
        for _ in range(100):
            pa = a.health()["components"]["executions"]["partitions"]  # type: ignore[index]
            pb = b.health()["components"]["executions"]["partitions"]  # type: ignore[index]
            if pa and pb and sorted(pa + pb) == list(range(6)):
                break
            await asyncio.sleep(0.2)
        assert pa and pb and sorted(pa + pb) == list(range(6)), (pa, pb)
        producing = asyncio.create_task(
            _produce_slowly(kafka_bootstrap, topics, stream, chunks=16, pause=0.5)
        )
        await asyncio.sleep(random.uniform(1.5, 3.0))
        # on a loaded machine the first commit can come late: kill only once something is committed
        at_kill = await committed(conn, topic)
        for _ in range(300):
            if at_kill > 0:
                break
            await asyncio.sleep(0.1)
            at_kill = await committed(conn, topic)
        a.kill()
        await producing
        await wait_committed(conn, topic, len(stream.records), 300, [b])
        owned = b.health()["components"]["executions"]["partitions"]  # type: ignore[index]
        writers = {
            r["writer"]
            for r in await conn.fetch(
                "SELECT writer FROM aggregator_offsets WHERE topic = $1", topic
            )
        }
        print(
            f"\nseed {seed}: killed w-a at committed offset {at_kill}; w-b now owns {owned}; writers {writers}"
        )
        assert owned == list(range(6))
        assert 0 < at_kill < len(stream.records)
        await _verify(conn, kafka_bootstrap, topics, stream)
    finally:
        a.stop()
        b.stop()
        await conn.close()
