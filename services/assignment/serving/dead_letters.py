"""Dead letters of the config follower.

A config record the follower cannot apply (not JSON, not an ``AssignmentConfig``, a
tombstone without a schema id key, a config that does not compile) is counted and
skipped, and published to the dead-letter topic as a :class:`~shared.events.DeadLetter`
(key ``<topic>:<partition>:<offset>``: every replica, and every restart, re-reads the
compacted topic and sends it again; consumers deduplicate on the key).

Sending is off the follower's path: :meth:`DeadLetterSink.offer` appends to a bounded
buffer and never awaits; a background task connects a producer when there is something
to send and retries with backoff while Kafka is away. Original bytes larger than
``MAX_EMBEDDED_BYTES`` are not embedded (the dead letter must fit in one Kafka message):
the reason then gives their size and SHA-256.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from aiokafka import AIOKafkaProducer

from shared.events import MAX_EMBEDDED_BYTES, DeadLetter
from shared.kafka import ensure_topics, make_producer
from shared.topics import DEAD_LETTER

from .aio import cancel_and_wait
from .settings import ServingSettings

__all__ = ["MAX_EMBEDDED_BYTES", "DeadLetterSink"]

log = logging.getLogger(__name__)

CAPACITY: Final = 1000


class DeadLetterSink:
    """Bounded buffer of dead letters plus the task that sends them."""

    def __init__(
        self,
        settings: ServingSettings,
        *,
        producer_factory: Callable[..., AIOKafkaProducer] = make_producer,
    ) -> None:
        self.topic = DEAD_LETTER.full_name(settings.topic_prefix)
        self.bootstrap = settings.kafka_bootstrap_servers
        self.prefix = settings.topic_prefix
        self.create_topics = settings.create_topics
        self.backoff_s = settings.reconnect_backoff_s
        self.backoff_max_s = settings.reconnect_backoff_max_s
        self._client_id = f"abflow-serving-dlq-{settings.replica_id}"
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.buffer: deque[tuple[bytes, bytes]] = deque()
        self.sent = 0
        self.dropped = 0
        self.last_error: str | None = None

    def offer(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        error_code: str,
        reason: str,
    ) -> None:
        """Queue the dead letter of one record; never blocks."""
        letter = DeadLetter.for_record(
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            reason=reason,
            error_code=error_code,
            service="assignment",
        )
        if len(self.buffer) >= CAPACITY:
            self.dropped += 1
            return
        self.buffer.append(
            (f"{topic}:{partition}:{offset}".encode(), letter.model_dump_json().encode())
        )
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="config-dead-letters")

    async def stop(self, flush_timeout_s: float = 2.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        producer = self._producer
        if self.buffer and producer is not None:  # connected: try to send the rest
            with contextlib.suppress(Exception):
                async with asyncio.timeout(flush_timeout_s):
                    await self._drain(producer)
        if self.buffer:
            log.warning("config dead letters: %d not sent at shutdown", len(self.buffer))
        await self._close()

    def health(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "sent": self.sent,
            "pending": len(self.buffer),
            "dropped": self.dropped,
            "last_error": self.last_error,
        }

    async def _close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _drain(self, producer: AIOKafkaProducer) -> None:
        while self.buffer:
            key, value = self.buffer[0]
            async with asyncio.timeout(30):
                await producer.send_and_wait(self.topic, value, key=key)
            self.buffer.popleft()
            self.sent += 1

    async def _run(self) -> None:
        delay = self.backoff_s
        while True:
            while not self.buffer:
                self._wake.clear()
                await self._wake.wait()
            try:
                if self._producer is None:
                    if self.create_topics:
                        async with asyncio.timeout(30):
                            await ensure_topics(self.bootstrap, (DEAD_LETTER,), prefix=self.prefix)
                    producer = self._producer_factory(self.bootstrap, client_id=self._client_id)
                    self._producer = producer
                    await producer.start()
                await self._drain(self._producer)
                self.last_error = None
                delay = self.backoff_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retry whatever Kafka raised
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("config dead letters: %s; retry in %.1fs", self.last_error, delay)
                await self._close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
