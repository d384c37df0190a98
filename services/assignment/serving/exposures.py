"""Exposure events, off the request path.

A request that assigns a unit into an experiment calls :meth:`ExposureSink.offer`,
which never awaits: it skips a repeat this replica emitted recently (optional dedupe of
``(experiment, variant, unit)``), drops the exposure when the bounded buffer is full
(counted in ``assignment_exposures_dropped_total{reason="buffer_full"}``), and
otherwise appends a small tuple to a deque. A background task drains the buffer in
batches to the exposures topic (key = unit id) with the platform's idempotent producer
(``acks=all``). If Kafka is away the task retries with backoff, the buffer fills up
and new exposures are dropped and counted: memory stays bounded and no request waits.

The event is :class:`shared.events.ExposureEvent` as JSON; its constant part (ids,
keys, replica) is pre-serialised per outcome by the snapshot, so a send only adds the
unit id, the bucket and the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections import OrderedDict, deque
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from shared.kafka import make_producer

from .aio import cancel_and_wait
from .metrics import ServingMetrics
from .settings import ServingSettings

__all__ = ["ExposureSink", "encode_exposure", "murmur2"]

log = logging.getLogger(__name__)

# (pre-serialised event head up to "unit_id":, unit id, bucket, unix time)
_Item = tuple[bytes, str, float, float]
_WORDS = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's default partitioner; equal to
    :func:`aiokafka.partitioner.murmur2`, about twice as fast)."""
    m = 0x5BD1E995
    length = len(data)
    h = 0x9747B28C ^ length
    n4 = length & ~3
    if n4:
        for (k,) in _WORDS.iter_unpack(data[:n4]):
            k = (k * m) & 0xFFFFFFFF
            k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
            h = ((h * m) & 0xFFFFFFFF) ^ k
    extra = length - n4
    if extra:
        if extra == 3:
            h ^= data[n4 + 2] << 16
        if extra >= 2:
            h ^= data[n4 + 1] << 8
        h = ((h ^ data[n4]) * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


_second: list[Any] = [None, b""]  # (unix second, its ISO text up to the seconds)


def _iso(ts: float) -> bytes:
    """``datetime.fromtimestamp(ts, UTC).isoformat()`` with the date part cached per
    second (always with microseconds)."""
    sec = int(ts)
    if _second[0] != sec:
        _second[0] = sec
        _second[1] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()
    micros = round((ts - sec) * 1_000_000)
    if micros >= 1_000_000:  # rounding up into the next second
        return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").encode()
    return b"%s.%06d+00:00" % (_second[1], micros)


def encode_exposure(prefix: bytes, unit_id: str, bucket: float, ts: float) -> bytes:
    """The JSON of one :class:`~shared.events.ExposureEvent`."""
    return b"".join(
        (
            prefix,
            orjson.dumps(unit_id),
            b',"bucket":',
            repr(bucket).encode(),
            b',"exposed_at":"',
            _iso(ts),
            b'"}',
        )
    )


class ExposureSink:
    """Bounded exposure buffer plus the task that sends it to Kafka."""

    def __init__(
        self,
        settings: ServingSettings,
        metrics: ServingMetrics,
        *,
        clock: Any = time.monotonic,
    ) -> None:
        self.enabled = settings.exposures_enabled
        self.topic = settings.exposures_topic
        self.bootstrap = settings.exposures_bootstrap
        self.capacity = settings.exposure_buffer_size
        self.batch_size = settings.exposure_batch_size
        self.linger_s = settings.exposure_linger_ms / 1000
        self.window_s = settings.exposure_dedupe_window_s
        self.dedupe_max = settings.exposure_dedupe_max_entries
        self.flush_timeout_s = settings.exposure_flush_timeout_s
        self.backoff_s = settings.reconnect_backoff_s
        self.backoff_max_s = settings.reconnect_backoff_max_s
        self._client_id = f"abflow-serving-{settings.replica_id}"
        self._clock = clock
        self._metrics = metrics
        self._drop_full = metrics.exposures_dropped.labels("buffer_full").inc
        self._drop_failed = metrics.exposures_dropped.labels("send_failed")
        self._dedup = metrics.exposures_deduplicated.inc
        self.buffer: deque[_Item] = deque()
        self._seen: OrderedDict[tuple[bytes, str], float] = OrderedDict()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self.connected = False
        self.in_flight_since: float | None = None
        self.last_error: str | None = None
        self.dropped = 0
        self.sent = 0

    # --- hot path --------------------------------------------------------------------
    def offer(self, prefix: bytes, unit_id: str, bucket: float) -> None:
        """Queue one exposure; never blocks, never raises for a full buffer."""
        if not self.enabled:
            return
        if self.window_s > 0:
            key = (prefix, unit_id)
            now = self._clock()
            seen = self._seen
            until = seen.get(key)
            if until is not None and until > now:
                self._dedup()
                return
            if len(self.buffer) >= self.capacity:
                self.dropped += 1
                self._drop_full()
                return
            seen[key] = now + self.window_s
            seen.move_to_end(key)
            if len(seen) > self.dedupe_max:
                seen.popitem(last=False)
        elif len(self.buffer) >= self.capacity:
            self.dropped += 1
            self._drop_full()
            return
        self.buffer.append((prefix, unit_id, bucket, time.time()))
        self._wake.set()

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="exposure-sender")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._closing = True
        self._wake.set()
        try:
            if self.connected:  # flush what is buffered (no point without a producer)
                await asyncio.wait({task}, timeout=self.flush_timeout_s)
            if self.buffer:
                log.warning("exposures: %d buffered events not sent at shutdown", len(self.buffer))
        finally:
            await cancel_and_wait(task)
            await self._close_producer()

    def health(self) -> dict[str, Any]:
        if not self.enabled:
            return {"status": "ok", "enabled": False}
        stalled = self.in_flight_since is not None and self._clock() - self.in_flight_since > 10.0
        producer = "stalled" if stalled else "connected" if self.connected else "disconnected"
        return {
            "status": "ok" if producer == "connected" else "degraded",
            "enabled": True,
            "producer": producer,
            "buffered": len(self.buffer),
            "capacity": self.capacity,
            "dropped": self.dropped,
            "sent": self.sent,
            "last_error": self.last_error,
        }

    # --- sender ----------------------------------------------------------------------
    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _run(self) -> None:
        delay = self.backoff_s
        while True:
            if self._closing and not self.buffer:
                return
            try:
                if self._producer is None:
                    producer = make_producer(self.bootstrap, client_id=self._client_id, linger_ms=5)
                    self._producer = producer
                    await producer.start()
                    self.connected = True
                    self.last_error = None
                    log.info("exposures: producer connected to %s", self.bootstrap)
                await self._pump(self._producer)
                delay = self.backoff_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retry whatever Kafka raised
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("exposures: %s; retry in %.1fs", self.last_error, delay)
                await self._close_producer()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)

    async def _pump(self, producer: AIOKafkaProducer) -> None:
        """Send batches until the buffer is empty and the sink is closing."""
        buf = self.buffer
        while True:
            while not buf:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            if len(buf) < self.batch_size and self.linger_s > 0 and not self._closing:
                await asyncio.sleep(self.linger_s)
            n = min(len(buf), self.batch_size)
            batch = [buf.popleft() for _ in range(n)]
            await self._send(producer, batch)

    async def _send(self, producer: AIOKafkaProducer, batch: list[_Item]) -> None:
        """Hand one round to the producer as one record batch per partition (the
        partition of each unit id by the Java client's murmur2 rule), then wait for the
        acknowledgements."""
        topic = self.topic
        self.in_flight_since = self._clock()
        pending: list[tuple[asyncio.Future[Any], int]] = []
        try:
            partitions = sorted(await producer.partitions_for(topic))
            n = len(partitions)
            builders: dict[int, tuple[Any, list[int]]] = {}
            for prefix, unit_id, bucket, ts in batch:
                key = unit_id.encode()
                partition = partitions[(murmur2(key) & 0x7FFFFFFF) % n]
                value = encode_exposure(prefix, unit_id, bucket, ts)
                slot = builders.get(partition)
                if slot is None:
                    slot = builders[partition] = (producer.create_batch(), [0])
                if slot[0].append(key=key, value=value, timestamp=int(ts * 1000)) is None:  # full
                    future = await producer.send_batch(slot[0], topic, partition=partition)
                    pending.append((future, slot[1][0]))
                    slot = builders[partition] = (producer.create_batch(), [0])
                    slot[0].append(key=key, value=value, timestamp=int(ts * 1000))
                slot[1][0] += 1
            for partition, (builder, count) in builders.items():
                future = await producer.send_batch(builder, topic, partition=partition)
                pending.append((future, count[0]))
        except Exception:
            # the producer could not take the rest: it is lost, the sender reconnects
            lost = len(batch) - sum(count for _, count in pending)
            self.dropped += lost
            self._drop_failed.inc(lost)
            await self._settle(pending)
            self.in_flight_since = None
            raise
        try:
            await self._settle(pending)
        finally:
            self.in_flight_since = None

    async def _settle(self, pending: list[tuple[asyncio.Future[Any], int]]) -> None:
        results = await asyncio.gather(*(f for f, _ in pending), return_exceptions=True)
        ok = failed = 0
        error: BaseException | None = None
        for result, (_, count) in zip(results, pending, strict=True):
            if isinstance(result, BaseException):
                failed += count
                error = error or result
            else:
                ok += count
        self.sent += ok
        self._metrics.exposures_sent.inc(ok)
        if error is not None:
            self.dropped += failed
            self._drop_failed.inc(failed)
            self.last_error = f"{error.__class__.__name__}: {error}"
            log.warning("exposures: %d events not delivered (%s)", failed, self.last_error)
