"""Where execution events go: the executions topic, through an idempotent producer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared.events import ExecutionEvent
from shared.kafka import make_producer, retry_start

from ._errors import EmitError

log = logging.getLogger("shared.client")

__all__ = ["EventSink", "KafkaEventSink", "encode_event"]


@runtime_checkable
class EventSink(Protocol):
    """Receives execution events. :class:`KafkaEventSink` is the real one; tests may
    pass their own to :class:`~shared.client.AbflowClient`."""

    async def send(self, event: ExecutionEvent, *, wait: bool = True) -> None:
        """Deliver ``event``; with ``wait=False`` only enqueue it (see :meth:`flush`)."""
        ...

    async def flush(self) -> None:
        """Wait until every enqueued event is delivered (or has failed)."""
        ...

    async def close(self) -> None: ...


def encode_event(event: ExecutionEvent) -> tuple[bytes, bytes]:
    """The record key (the execution id) and value (the event's JSON)."""
    return event.execution_id.encode(), event.model_dump_json().encode()


class KafkaEventSink:
    """Produces to one topic with :func:`shared.kafka.make_producer` (``acks=all``,
    ``enable_idempotence=True``), keyed by execution id. The producer starts on the
    first event, so an assignment-only client never connects to Kafka."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        producer_options: Mapping[str, Any] | None = None,
        start_attempts: int = 3,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._options = dict(producer_options or {})
        self._start_attempts = start_attempts
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Future[Any]] = set()
        self.failures = 0

    async def _ready(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.bootstrap, **self._options)
                try:
                    await retry_start(
                        producer.start, "Kafka", attempts=self._start_attempts, backoff_s=0.2
                    )
                except (KafkaError, OSError) as exc:
                    with contextlib.suppress(KafkaError, OSError):
                        await producer.stop()
                    raise EmitError(f"cannot connect to Kafka at {self.bootstrap}: {exc}") from exc
                self._producer = producer
            return self._producer

    async def send(self, event: ExecutionEvent, *, wait: bool = True) -> None:
        producer = await self._ready()
        key, value = encode_event(event)
        try:
            fut = await producer.send(self.topic, value=value, key=key)
            if wait:
                await fut
                return
        except KafkaError as exc:
            self.failures += 1
            raise EmitError(f"execution {event.execution_id} not delivered: {exc!r}") from exc
        self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self._pending.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            self.failures += 1
            log.error("execution event not delivered: %r", fut.exception())

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self._producer is not None:
            await self._producer.flush()

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            producer, self._producer = self._producer, None
            if producer is not None:
                await producer.stop()
