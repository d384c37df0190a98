"""Kafka helpers: topic creation from :mod:`shared.topics`, producer and consumer
factories with the platform's defaults, and start-up retry with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from shared.topics import ALL_TOPICS, TopicSpec

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = [
    "backoff_metadata_failures",
    "ensure_topics",
    "make_consumer",
    "make_producer",
    "retry_start",
]


async def retry_start(
    start: Callable[[], Awaitable[T]], what: str, attempts: int = 30, backoff_s: float = 0.5
) -> T:
    """Call ``start`` until it succeeds, with capped exponential backoff."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            return await start()
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            if attempt == attempts:
                raise
            log.warning(
                "%s not reachable (%s); retry %d/%d in %.1fs", what, exc, attempt, attempts, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


async def ensure_topics(
    bootstrap: str,
    specs: Iterable[TopicSpec] = ALL_TOPICS,
    prefix: str = "",
    partitions: dict[str, int] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    ``partitions`` overrides a spec's partition count by logical name.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await retry_start(admin.start, "Kafka admin")
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name=spec.full_name(prefix),
                num_partitions=(partitions or {}).get(spec.name, spec.partitions),
                replication_factor=1,
                topic_configs=dict(spec.config),
            )
            for spec in specs
            if spec.full_name(prefix) not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(new)
        return [t.name for t in new]
    finally:
        await admin.close()


def make_producer(
    bootstrap: str, *, transactional_id: str | None = None, **overrides: Any
) -> AIOKafkaProducer:
    """An idempotent producer (``acks=all``): retries never duplicate or reorder."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30000,
    }
    if transactional_id is not None:
        options["transactional_id"] = transactional_id
    options.update(overrides)
    producer = AIOKafkaProducer(**options)
    backoff_metadata_failures(producer.client)
    return producer


METADATA_FAILURE_BACKOFF_S = 0.5


def backoff_metadata_failures(client: Any, backoff_s: float = METADATA_FAILURE_BACKOFF_S) -> None:
    """Wait ``backoff_s`` after each failed metadata update of an aiokafka client.

    aiokafka 0.14's producer asks for a metadata update again as soon as one fails while a
    partition's leader is unknown (its sender loop; the client's synchronizer has no
    backoff either). With the broker away, refused connections fail at once, so a producer
    that had records in flight when the broker stopped reconnected a few thousand times a
    second, took a core and wrote thousands of log lines a second (measured in
    ``tests/reliability/faults/test_control_faults.py``). This wraps the client's internal
    ``_metadata_update`` (the one method both paths call) on this instance only; consumers
    get it too (their metadata retries are slower, but each one logs). With the broker back,
    a client notices it at most ``backoff_s`` later.
    """
    update = client._metadata_update

    async def update_with_backoff(cluster_metadata: Any, topics: Any) -> Any:
        ok = await update(cluster_metadata, topics)
        if not ok:
            await asyncio.sleep(backoff_s)
        return ok

    client._metadata_update = update_with_backoff


def make_consumer(
    bootstrap: str, *topics: str, group_id: str | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer reading committed records from the earliest offset, manual commits."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "session_timeout_ms": 10000,
        "heartbeat_interval_ms": 1000,
    }
    options.update(overrides)
    consumer = AIOKafkaConsumer(*topics, **options)
    backoff_metadata_failures(consumer._client)
    return consumer


def main() -> int:
    """``python -m shared.kafka``: create the platform topics (``make up`` runs it)."""
    import os
    import sys

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        sys.stderr.write("error: set KAFKA_BOOTSTRAP_SERVERS\n")
        return 2
    created = asyncio.run(ensure_topics(bootstrap, prefix=os.environ.get("TOPIC_PREFIX", "")))
    sys.stdout.write(
        f"topics: {len(created)} created, {len(ALL_TOPICS) - len(created)} already in place\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
