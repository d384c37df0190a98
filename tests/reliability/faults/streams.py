"""Producing through faults, waiting for the aggregator, small HTTP helpers.

- :func:`produce_through_faults`: an idempotent producer (``acks=all``) that keeps
  going while the broker restarts: the client retries by itself, and a chunk whose
  delivery still fails is sent again on a fresh producer (a re-sent event is a
  duplicate the aggregator must drop: the check counts distinct events);
- :func:`wait_aggregated`: until the aggregator's committed offsets (PostgreSQL table
  ``aggregator_offsets``) reach the end of the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from tests.reliability.faults.stack import SERVICES, PrivateStack


@dataclass
class ProduceStats:
    sent: int = 0
    resent_chunks: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _producer(bootstrap: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        request_timeout_ms=30_000,
        retry_backoff_ms=250,
        max_request_size=2 * 1024 * 1024,
    )


async def produce_through_faults(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None]],
    *,
    chunk: int = 500,
    rate: float = 1_000.0,
    progress: list[int] | None = None,
    deadline_s: float = 240.0,
) -> ProduceStats:
    """Produce ``records`` at about ``rate`` per second, in chunks whose acknowledgement
    is awaited; a failed chunk is re-sent on a new producer after a pause.
    ``progress[0]`` is the number of acknowledged records (for the fault's timing)."""
    stats = ProduceStats()
    started = time.monotonic()
    producer: AIOKafkaProducer | None = None
    i = 0
    try:
        while i < len(records):
            if time.monotonic() - started > deadline_s:
                raise AssertionError(f"producing did not finish in {deadline_s}s: {stats}")
            part = records[i : i + chunk]
            t0 = time.monotonic()
            try:
                if producer is None:
                    producer = _producer(bootstrap)
                    async with asyncio.timeout(30):
                        await producer.start()
                futures = [await producer.send(topic, key=k, value=v) for k, v in part]
                async with asyncio.timeout(60):
                    await asyncio.gather(*futures)
            except (KafkaError, TimeoutError, OSError) as exc:
                stats.resent_chunks += 1
                stats.errors.append(f"{exc.__class__.__name__}: {exc}"[:200])
                if producer is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(producer.stop(), 10)
                producer = None
                await asyncio.sleep(0.5)
                continue
            i += len(part)
            stats.sent = i
            if progress is not None:
                progress[0] = i
            pause = len(part) / rate - (time.monotonic() - t0)
            if pause > 0:
                await asyncio.sleep(pause)
    finally:
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 10)
        stats.seconds = time.monotonic() - started
    return stats


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: int(o) for tp, o in ends.items()}
    finally:
        await consumer.stop()


async def wait_aggregated(
    database_url: str, topic: str, ends: dict[int, int], timeout: float = 180.0
) -> float:
    """Seconds until ``aggregator_offsets`` covers ``ends`` on every partition."""
    started = time.monotonic()
    last: dict[int, int] = {}
    while time.monotonic() - started < timeout:
        with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
            conn = await asyncpg.connect(database_url, timeout=5)
            try:
                rows = await conn.fetch(
                    "SELECT partition, max(next_offset) AS o FROM aggregator_offsets "
                    "WHERE topic = $1 GROUP BY partition",
                    topic,
                )
            finally:
                await conn.close()
            last = {r["partition"]: int(r["o"]) for r in rows}
            if all(last.get(p, 0) >= end for p, end in ends.items()):
                return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise AssertionError(f"aggregator offsets {last} did not reach {ends} in {timeout}s")


def error_json(resp: Any) -> dict[str, Any] | None:
    """The body as a JSON object, or None."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def wait_all_ok(stack: PrivateStack, timeout: float = 60.0) -> dict[str, float]:
    """Seconds until each service's ``/health`` says ``ok``."""
    started = time.monotonic()
    took: dict[str, float] = {}
    last: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=3.0) as client:
        while time.monotonic() - started < timeout:
            for name in SERVICES:
                if name in took:
                    continue
                try:
                    resp = await client.get(stack.url(name) + "/health")
                    status = resp.json().get("status")
                except (httpx.HTTPError, ValueError) as exc:
                    status = f"unreachable ({exc.__class__.__name__})"
                last[name] = str(status)
                if status == "ok":
                    took[name] = time.monotonic() - started
            if len(took) == len(SERVICES):
                return took
            await asyncio.sleep(0.5)
    raise AssertionError(f"services not ok after {timeout}s: {last}")
