"""The transactional sink on the real PostgreSQL: compare-and-set, duplicates, races, reloads."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.aggregator import sink
from services.aggregator.decoding import decode_execution
from services.aggregator.state import Execution, PartitionState, aggregate
from tests.integration.aggregator.generator import make_execution, make_universe

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await sink.create_sink_pool(database_url, min_size=2, max_size=4)
    yield p
    await p.close()


def _executions(n: int, tag: str, seed: int = 1) -> list[Execution]:
    import random

    import orjson

    rng = random.Random(seed)
    u = make_universe(rng)
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        ev = make_execution(rng, u, now - timedelta(minutes=rng.randint(1, 600)), f"{tag}-{i}")
        ex = decode_execution(orjson.dumps(ev))
        assert isinstance(ex, Execution)
        out.append(ex)
    return out


def _batch(p: int, base: int, execs: list[Execution]) -> sink.PartitionBatch:
    offsets = list(range(base, base + len(execs)))
    return sink.PartitionBatch(
        partition=p,
        base_offset=base,
        next_offset=base + len(execs),
        watermark_s=max(e.completed_s for e in execs),
        # as the pipeline decodes them: each execution knows where it was read
        executions=[
            e._replace(source_partition=p, source_offset=o)
            for e, o in zip(execs, offsets, strict=True)
        ],
    )


async def _flush(
    pool: asyncpg.Pool,
    topic: str,
    batches: dict[int, sink.PartitionBatch],
    states: dict[int, PartitionState],
) -> sink.FlushResult:
    async with pool.acquire() as conn:
        return await sink.flush_executions(
            conn, group="g", topic=topic, batches=batches, states=states, writer="t", flush_seq=1
        )


async def _rows(
    conn: asyncpg.Connection, schema_ids: list[str]
) -> dict[tuple[object, ...], tuple[object, ...]]:
    rows = await conn.fetch(
        "SELECT schema_id, schema_version, variant_id, period_start, source_partition, total_executions, "
        "duration_sum, duration_sketch FROM version_performance_metrics WHERE schema_id = ANY($1::uuid[])",
        schema_ids,
    )
    return {tuple(r.values())[:5]: tuple(r.values())[5:] for r in rows}


async def test_a_stale_worker_cannot_commit_and_a_replay_rewrites_the_same_values(
    pool: asyncpg.Pool,
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    execs = _executions(300, topic)
    schemas = sorted({e.schema_id for e in execs})
    async with pool.acquire() as conn:
        assert await sink.claim_partitions(conn, "g", topic, [0]) == {0: (0, None)}
    owner = {0: PartitionState(0, 0, None, complete=True)}
    res = await _flush(pool, topic, {0: _batch(0, 0, execs[:200])}, owner)
    assert res.counted == {0: 200} and res.raw_rows == 200

    # a zombie still based on offset 0 (it lost the partition) is refused: nothing changes
    async with pool.acquire() as conn:
        before = await _rows(conn, schemas)
    zombie = {0: PartitionState(0, 0, None, complete=True)}
    with pytest.raises(sink.StalePartitions) as info:
        await _flush(pool, topic, {0: _batch(0, 0, execs[:250])}, zombie)
    assert info.value.partitions == [0]
    async with pool.acquire() as conn:
        assert await _rows(conn, schemas) == before
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM workflow_executions WHERE execution_id = ANY($1::text[])",
                [e.execution_id for e in execs],
            )
            == 200
        )
        progress = await sink.claim_partitions(conn, "g", topic, [0])
    assert progress[0][0] == 200

    # a new owner loads the partition from PostgreSQL (cold cache) and continues exactly
    fresh = {0: PartitionState(0, 200, progress[0][1])}
    res = await _flush(pool, topic, {0: _batch(0, 200, execs[200:])}, fresh)
    assert res.counted == {0: 100}
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT sum(total_executions) FROM version_performance_metrics WHERE schema_id = ANY($1::uuid[]) "
            "AND source_partition = 0 AND period_type = 'hour'",
            schemas,
        )
    assert stored == 300
    dv, _ = aggregate([(0, e) for e in execs])
    for key, agg in dv.items():
        assert fresh[0].versions[key].total == agg.total
        assert fresh[0].versions[key].sketch == agg.sketch


async def test_duplicates_count_once_within_a_flush_across_partitions_and_flushes(
    pool: asyncpg.Pool,
) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"
    execs = _executions(100, topic, seed=2)
    async with pool.acquire() as conn:
        await sink.claim_partitions(conn, "g", topic, [0, 1])
    states = {p: PartitionState(p, 0, None, complete=True) for p in (0, 1)}
    # partition 0 carries 0..59 plus a retry of 5; partition 1 carries 40..79 (40..59 duplicated)
    b0 = _batch(0, 0, [*execs[:60], execs[5]])
    b1 = _batch(1, 0, execs[40:80])
    res = await _flush(pool, topic, {0: b0, 1: b1}, states)
    assert sum(res.counted.values()) == 80
    assert sum(res.duplicates.values()) == 21
    # a later retry of everything counts nothing
    res2 = await _flush(pool, topic, {1: _batch(1, 40, execs[:80])}, states)
    assert res2.counted == {1: 0} and res2.duplicates == {1: 80}
    async with pool.acquire() as conn:
        total = await conn.fetchval(
            "SELECT sum(total_executions) FROM version_performance_metrics WHERE schema_id = ANY($1::uuid[]) AND period_type = 'hour'",
            sorted({e.schema_id for e in execs}),
        )
        counters = await conn.fetch(
            "SELECT partition, next_offset, events_counted, duplicates FROM aggregator_offsets WHERE topic = $1 ORDER BY partition",
            topic,
        )
    assert total == 80
    assert [tuple(r.values()) for r in counters] == [
        (0, 61, res.counted[0], res.duplicates[0]),
        (1, 120, res.counted[1], 80 + res.duplicates[1]),
    ]


async def _blocked_by(
    pool: asyncpg.Pool, holder_pid: int, task: asyncio.Task[sink.FlushResult]
) -> None:
    """Wait until a backend waits for a lock that backend ``holder_pid`` holds (the
    racing flush, whatever the machine's speed); fail if ``task`` ends first (it did
    not wait for the uncommitted key) or after 30 s."""
    deadline = asyncio.get_running_loop().time() + 30.0
    while True:
        if task.done():
            raise AssertionError(f"the flush did not wait for the uncommitted key: {task!r}")
        # a fresh statement each time: pg_stat_activity is a snapshot per transaction
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND $1::int = ANY(pg_blocking_pids(pid))",
            holder_pid,
        )
        if waiting:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("after 30 s the flush is still not waiting for the key")
        await asyncio.sleep(0.05)


async def test_concurrent_workers_racing_on_one_execution_id_count_it_once(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Worker 0 has stored id X in an open transaction when worker 1 (another partition,
    same X) flushes: worker 1's COPY waits, then fails on the primary key and rolls back;
    its retry sees X and counts nothing."""
    topic = f"t-{uuid.uuid4().hex[:8]}"
    ex = _executions(3, topic, seed=3)
    async with pool.acquire() as conn:
        await sink.claim_partitions(conn, "g", topic, [1])
    other = await asyncpg.connect(database_url)
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "INSERT INTO workflow_executions (execution_id, schema_id, schema_version, success, duration_ms, "
            "started_at, completed_at) VALUES ($1, $2, $3, true, 1, now(), now())",
            ex[1].execution_id,
            ex[1].schema_id,
            ex[1].schema_version,
        )
        states = {1: PartitionState(1, 0, None, complete=True)}
        racing = asyncio.create_task(_flush(pool, topic, {1: _batch(1, 0, ex)}, states))
        await _blocked_by(pool, other.get_server_pid(), racing)  # on the uncommitted key
        await tx.commit()
        with pytest.raises(asyncpg.UniqueViolationError):
            await racing
    finally:
        await other.close()
    async with pool.acquire() as conn:
        assert (await sink.claim_partitions(conn, "g", topic, [1]))[1][0] == 0  # nothing committed
    retry = await _flush(pool, topic, {1: _batch(1, 0, ex)}, {1: PartitionState(1, 0, None)})
    assert retry.counted == {1: 2} and retry.duplicates == {1: 1}


async def test_retention_purges_only_old_raw_executions(pool: asyncpg.Pool) -> None:
    tag = f"ret-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        # far in the past, so that the purge touches no other test's rows in this database
        old = datetime(1971, 1, 1, tzinfo=UTC)
        await conn.execute(
            "INSERT INTO workflow_executions (execution_id, schema_id, schema_version, success, duration_ms, "
            "started_at, completed_at) SELECT $1 || g, gen_random_uuid(), 1, true, 1, $2, $2 "
            "FROM generate_series(1, 25) g",
            tag,
            old,
        )
        await conn.execute(
            "INSERT INTO workflow_executions (execution_id, schema_id, schema_version, success, duration_ms, "
            "started_at, completed_at) VALUES ($1, gen_random_uuid(), 1, true, 1, now(), now())",
            f"{tag}-new",
        )
        deleted = await sink.purge_raw_executions(
            conn, datetime.now(UTC) - timedelta(days=399), batch=10
        )
        assert deleted == 25
        left = await conn.fetch(
            "SELECT execution_id FROM workflow_executions WHERE execution_id LIKE $1", f"{tag}%"
        )
    assert [r[0] for r in left] == [f"{tag}-new"]
