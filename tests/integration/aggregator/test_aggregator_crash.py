"""SIGKILL the worker mid-stream, restart, rebalance: the aggregates stay exact."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
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
MID_STREAM_KILLS = 3
"""Kills that must land mid-stream: the producer holds back its last chunks until then."""
MAX_KILLS = 5


@dataclass
class Feed:
    """What the slow producer holds back and how far it got. Its last ``held_back``
    chunks wait for ``release``: kills made before it is set land mid-stream by
    construction, however slow the worker's restarts are."""

    held_back: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    """Execution records acknowledged by Kafka so far."""


async def _produce_slowly(
    bootstrap: str,
    prefix: str,
    stream: Stream,
    chunks: int,
    pause: float,
    feed: Feed | None = None,
) -> None:
    """The stream in ``chunks`` pieces, ``pause`` seconds apart (order kept per partition);
    with ``feed``, its last ``feed.held_back`` pieces only once ``feed.release`` is set."""
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
            if feed is not None and i == chunks - feed.held_back:
                await feed.release.wait()
            chunk = records[i * step : (i + 1) * step]
            await produce(bootstrap, EXECUTIONS.full_name(prefix), chunk, 6, producer=producer)
            if feed is not None:
                feed.sent += len(chunk)
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
    feed = Feed(held_back=5)
    producing = asyncio.create_task(
        _produce_slowly(kafka_bootstrap, topics, stream, chunks=30, pause=1.0, feed=feed)
    )
    try:
        worker.start()
        await worker.wait_ready()
        # the producer cannot finish before MID_STREAM_KILLS kills (it holds back its end)
        while not producing.done():
            # let the worker commit something after its (re)start (before the first kill it
            # must, or the kill would not be mid-stream), then kill it at a random moment
            base = await committed(conn, topic)
            since = time.monotonic()
            while True:
                now = await committed(conn, topic)
                if now > base or (base > 0 and now >= feed.sent):  # progress, or caught up
                    break
                if base == 0 and time.monotonic() - since > 120:
                    raise AssertionError(f"nothing committed after 120 s; log:\n{worker.tail()}")
                if base > 0 and time.monotonic() - since > 30:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(rng.uniform(0.0, 1.5))
            before = await committed(conn, topic)
            worker.kill()
            kills.append((before, await committed(conn, topic)))
            if len(kills) == MID_STREAM_KILLS:
                feed.release.set()
            worker.start()
            await worker.wait_ready()
            if len(kills) >= MAX_KILLS:
                break
        await producing
        started = time.monotonic()
        await wait_committed(conn, topic, len(stream.records), 300, [worker])
        print(
            f"\nseed {seed}: {len(stream.records):,} records, SIGKILLs at committed offsets "
            f"{[k[0] for k in kills]}; caught up {time.monotonic() - started:.1f}s after the last restart"
        )
        mid_stream = [k for k in kills if 0 < k[0] < len(stream.records)]
        assert len(mid_stream) >= MID_STREAM_KILLS, (
            f"only {len(mid_stream)} kills landed mid-stream: {kills}"
        )
        await _verify(conn, kafka_bootstrap, topics, stream)
        assert (
            await conn.fetchval(
                "SELECT sum(events_counted) FROM aggregator_offsets WHERE topic = $1", topic
            )
            == expected(stream).distinct
        )
    finally:
        if not producing.done():  # the test failed while the producer waited for its release
            producing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producing
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
    producing: asyncio.Task[None] | None = None
    try:
        a.start()
        b.start()
        await a.wait_ready()
        await b.wait_ready()
        # both own partitions once the group has settled
        settle_by = time.monotonic() + 60
        while True:
            pa, pb = await a.owned_partitions(), await b.owned_partitions()
            if (pa and pb and sorted(pa + pb) == list(range(6))) or time.monotonic() > settle_by:
                break
            await asyncio.sleep(0.2)
        assert pa and pb and sorted(pa + pb) == list(range(6)), (pa, pb)
        feed = Feed(held_back=4)  # the stream's end waits for the kill: it lands mid-stream
        producing = asyncio.create_task(
            _produce_slowly(kafka_bootstrap, topics, stream, chunks=16, pause=0.5, feed=feed)
        )
        await asyncio.sleep(random.uniform(1.5, 3.0))
        # on a loaded machine the first commit can come late: kill only once something is committed
        at_kill = await committed(conn, topic)
        wait_from = time.monotonic()
        while at_kill == 0 and time.monotonic() - wait_from < 120:
            await asyncio.sleep(0.1)
            at_kill = await committed(conn, topic)
        a.kill()
        feed.release.set()
        await producing
        await wait_committed(conn, topic, len(stream.records), 300, [b])
        owned = await b.owned_partitions()
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
        if producing is not None and not producing.done():
            producing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producing
        a.stop()
        b.stop()
        await conn.close()
