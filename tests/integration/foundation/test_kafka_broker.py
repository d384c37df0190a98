"""The real broker: consumer groups, log compaction and transactions."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.kafka import ensure_topics, make_consumer, make_producer
from shared.topics import ALL_TOPICS

pytestmark = pytest.mark.integration


async def _create(
    bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
    finally:
        await admin.close()


async def _drain(
    consumer: AIOKafkaConsumer, want: int, timeout: float = 20.0
) -> list[tuple[bytes | None, bytes | None]]:
    got: list[tuple[bytes | None, bytes | None]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < want and asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            got.extend((r.key, r.value) for r in records)
    return got


async def test_platform_topics_are_created_with_their_settings(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    created = await ensure_topics(kafka_bootstrap, prefix=topic_prefix)
    assert sorted(created) == sorted(t.full_name(topic_prefix) for t in ALL_TOPICS)
    assert await ensure_topics(kafka_bootstrap, prefix=topic_prefix) == []  # idempotent
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([t.full_name(topic_prefix) for t in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    for spec in ALL_TOPICS:
        assert partitions[spec.full_name(topic_prefix)] == spec.partitions


async def test_produce_and_consume_through_a_consumer_group(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}group"
    await _create(kafka_bootstrap, topic, partitions=3)
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for i in range(300):
            await producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode())
        await producer.flush()
    finally:
        await producer.stop()

    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(kafka_bootstrap, topic, group_id=group)
    await consumer.start()
    try:
        got = await _drain(consumer, 300)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert sorted(v for _, v in got) == sorted(f"v{i}".encode() for i in range(300))

    # the committed offsets are the group's: a new member of the group reads nothing more
    again = make_consumer(kafka_bootstrap, topic, group_id=group)
    await again.start()
    try:
        assert await _drain(again, 1, timeout=3) == []
    finally:
        await again.stop()


async def test_compacted_topic_keeps_the_last_value_per_key(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}compacted"
    await _create(
        kafka_bootstrap,
        topic,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": "100",
        },
    )
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        for round_ in range(5):
            for key in ("a", "b", "c"):
                await producer.send_and_wait(
                    topic, key=key.encode(), value=f"{key}{round_}".encode()
                )
        # later records roll the segments so the cleaner can compact the earlier ones
        deadline = asyncio.get_running_loop().time() + 60
        compacted = False
        while not compacted and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(1.0)
            await producer.send_and_wait(topic, key=b"roll", value=b"x")
            consumer = make_consumer(kafka_bootstrap, topic, group_id=None)
            await consumer.start()
            try:
                records = await _drain(consumer, 10_000, timeout=2)
            finally:
                await consumer.stop()
            values = [v for k, v in records if k != b"roll"]
            compacted = len(values) == 3
    finally:
        await producer.stop()
    assert compacted, f"topic not compacted in 60 s: {values}"
    assert sorted(values) == [b"a4", b"b4", b"c4"]


async def test_transactions_commit_and_abort(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}tx"
    await _create(kafka_bootstrap, topic, partitions=2)
    producer = make_producer(kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}")
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(10):
                await producer.send(topic, key=b"k", value=f"committed-{i}".encode())
        await producer.begin_transaction()
        for i in range(10):
            await producer.send(topic, key=b"k", value=f"aborted-{i}".encode())
        await producer.flush()
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, key=b"k", value=b"committed-last")
    finally:
        await producer.stop()

    committed = make_consumer(
        kafka_bootstrap, topic, group_id=None, isolation_level="read_committed"
    )
    uncommitted = make_consumer(
        kafka_bootstrap, topic, group_id=None, isolation_level="read_uncommitted"
    )
    await committed.start()
    await uncommitted.start()
    try:
        seen = [v for _, v in await _drain(committed, 11)]
        await asyncio.sleep(1)
        seen += [v for _, v in await _drain(committed, 1, timeout=1)]
        raw = [v for _, v in await _drain(uncommitted, 21)]
    finally:
        await committed.stop()
        await uncommitted.stop()
    assert seen == [f"committed-{i}".encode() for i in range(10)] + [b"committed-last"]
    assert sum(1 for v in raw if v and v.startswith(b"aborted-")) == 10
