"""The two stream processors of the worker.

:class:`ExecutionsPipeline` (exactly once) consumes the executions topic with its own
aiokafka consumer in the consumer group ``<group>.executions``. Its offsets live in
PostgreSQL (``aggregator_offsets``), written in the same transaction as the aggregates:

- on assignment, a partition's committed offset and watermark are read from PostgreSQL
  and the consumer is **seeked** there; records below it are skipped;
- records are decoded in batches (``getmany``), bad ones are dead-lettered, good ones
  buffered per partition;
- every ``flush_interval`` a flush task applies the buffers with
  :func:`~services.aggregator.sink.flush_executions` while the consumer keeps reading;
- if a flush fails (database error, or a stale partition after a rebalance), everything
  read from the partitions of that flush is dropped, their state is re-read from
  PostgreSQL and the consumer is seeked back: the records are read again.

Faust's own consumer is not used here: it commits offsets to Kafka when events are acked
and seeks partitions back to those Kafka offsets after recovery
(``Consumer.perform_seek``), which would fight offsets kept in PostgreSQL; the
rebalance listener of a plain aiokafka consumer gives the seek-on-assignment this design
needs. Faust runs the worker (lifecycle, signals, web views) and the exposures agent.

:class:`ExposureProcessor` handles batches of the exposures topic for a Faust agent
(``stream.take_events``: events are acked only after the batch returned, so delivery is
at least once). The sink is idempotent and order-independent (the earliest exposure of a
unit wins), so a replay never changes the distinct-unit counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from services.aggregator import sink
from services.aggregator.decoding import (
    Exposure,
    Rejection,
    decode_execution,
    decode_exposure,
    make_dead_letter,
)
from services.aggregator.metrics import AggregatorMetrics
from services.aggregator.settings import AggregatorSettings
from services.aggregator.state import PartitionState, Pending, classify_time
from shared.db.pool import PoolProbe
from shared.kafka import make_consumer
from shared.topics import DEAD_LETTER

log = logging.getLogger(__name__)

__all__ = ["ExecutionsPipeline", "ExposureProcessor", "is_connection_error"]

# Errors that mean "PostgreSQL is not reachable right now" (restart, failover, network):
# the work is retried with backoff and /health says so meanwhile.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timeouts (TimeoutError is an OSError)
    asyncpg.InterfaceError,  # includes ConnectionDoesNotExistError
    asyncpg.CannotConnectNowError,  # starting up / shutting down
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionFailureError,
)


def is_connection_error(exc: BaseException) -> bool:
    """True for a lost or refused PostgreSQL connection (as opposed to a failed statement)."""
    return isinstance(exc, _CONNECTION_ERRORS)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, pipeline: ExecutionsPipeline) -> None:
        self.pipeline = pipeline

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.pipeline.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self.pipeline.on_assigned(list(assigned))


class ExecutionsPipeline:
    """Executions topic → PostgreSQL, exactly once (see the module docstring)."""

    name = "executions"

    def __init__(
        self,
        settings: AggregatorSettings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        metrics: AggregatorMetrics,
        *,
        consumer_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.metrics = metrics
        self.topic = settings.executions_topic
        self.group = settings.executions_group
        self.dlq_topic = DEAD_LETTER.full_name(settings.topic_prefix)
        self.partitions: dict[int, PartitionState] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self._consumer_overrides = consumer_overrides or {}
        self._task: asyncio.Task[None] | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._resync: set[int] = set()
        self._stopping = False
        self._last_flush = time.monotonic()
        self._flush_seq = 0
        self._lateness_s = settings.aggregator_lateness_hours * 3600.0
        self._touched_variants: set[str] = set()
        self._last_lag_update = 0.0
        self.last_error: str | None = None
        self.last_flush_ok: float | None = None
        self.failed_flushes_in_a_row = 0
        self.database_unreachable_since: float | None = None
        self.kafka_unreachable_since: float | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self._db_probe: PoolProbe | None = None  # notices a lost database while idle too
        self.ready = asyncio.Event()
        self._ev_counted = metrics.events.labels(self.topic, "counted")
        self._ev_dup = metrics.events.labels(self.topic, "duplicate")
        self._ev_dead = metrics.events.labels(self.topic, "dead_letter")
        self._ev_skip = metrics.events.labels(self.topic, "replay_skipped")

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        s = self.settings
        options: dict[str, Any] = {
            "session_timeout_ms": int(s.aggregator_session_timeout_s * 1000),
            "heartbeat_interval_ms": int(s.aggregator_heartbeat_interval_s * 1000),
            "max_poll_interval_ms": 300_000,
            "rebalance_timeout_ms": int(max(30.0, s.aggregator_session_timeout_s * 3) * 1000),
            "max_partition_fetch_bytes": 4 * 1024 * 1024,
            "fetch_max_bytes": 32 * 1024 * 1024,
            "client_id": f"aggregator-{s.aggregator_worker_id}",
        }
        options.update(self._consumer_overrides)
        self.consumer = make_consumer(s.kafka_bootstrap_servers, group_id=self.group, **options)
        self.consumer.subscribe([self.topic], listener=_Listener(self))
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name="aggregator-executions")
        self._probe_task = asyncio.create_task(self._probe_kafka(), name="aggregator-kafka-probe")
        self._db_probe = PoolProbe(self.pool, s.database_url)
        self._db_probe.start()

    async def stop(self) -> None:
        self._stopping = True
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._probe_task
        if self._db_probe is not None:
            await self._db_probe.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._wait_flush()
        if self.partitions:
            with contextlib.suppress(Exception):
                await self._flush_now()
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await self.consumer.stop()
        self.partitions.clear()

    def health(self) -> dict[str, Any]:
        """``down`` when the consume loop died; ``degraded`` while PostgreSQL or the Kafka
        broker is unreachable (the worker retries with backoff and resumes by itself) or
        after three failed flushes in a row; else ``ok``."""
        running = self._task is not None and not self._task.done()
        probe = self._db_probe
        now = time.monotonic()
        db_since = [t for t in (self.database_unreachable_since,) if t is not None]
        if probe is not None and not probe.reachable:
            db_since.append(probe.unreachable_since or now)
        db_down = bool(db_since)
        kafka_down = self.kafka_unreachable_since is not None
        status = "ok"
        if not running and not self._stopping:
            status = "down"
        elif db_down or kafka_down or self.failed_flushes_in_a_row >= 3:
            status = "degraded"
        return {
            "status": status,
            "ready": running and self.ready.is_set(),
            "database": "unreachable" if db_down else "ok",
            "database_unreachable_s": round(now - min(db_since), 1) if db_since else None,
            "kafka": "unreachable" if kafka_down else "ok",
            "kafka_unreachable_s": None
            if self.kafka_unreachable_since is None
            else round(now - self.kafka_unreachable_since, 1),
            "partitions": sorted(self.partitions),
            "last_flush_ok": self.last_flush_ok,
            "last_error": self.last_error,
        }

    async def _probe_kafka(self) -> None:
        """A metadata request every ``aggregator_kafka_probe_interval_s``: the consumer
        itself only retries quietly while the broker is away, so /health asks."""
        interval = self.settings.aggregator_kafka_probe_interval_s
        while True:
            await asyncio.sleep(interval)
            if self.consumer is None:
                continue
            try:
                await asyncio.wait_for(self._metadata_probe(), timeout=max(2.0, interval))
            except Exception as exc:  # noqa: BLE001 - any failure means "cannot tell it is up"
                if self.kafka_unreachable_since is None:
                    self.kafka_unreachable_since = time.monotonic()
                    log.warning("Kafka unreachable (%r); the consumer keeps retrying", exc)
                continue
            if self.kafka_unreachable_since is not None:
                log.info(
                    "Kafka reachable again after %.1fs",
                    time.monotonic() - self.kafka_unreachable_since,
                )
                self.kafka_unreachable_since = None

    async def _metadata_probe(self) -> None:
        """A metadata request for the executions topic alone. (``consumer.topics()`` asks
        for every topic of the cluster: with thousands of topics that took 1.4-2.1%
        of the worker's samples.) Uses the consumer's client, an aiokafka internal."""
        assert self.consumer is not None
        client = self.consumer._client
        node = client.get_random_node()
        if node is None:
            raise KafkaConnectionError("no broker known")
        await client.send(node, MetadataRequest([self.topic]))

    def _database_failed(self, exc: BaseException, *, certain: bool = False) -> None:
        if (certain or is_connection_error(exc)) and self.database_unreachable_since is None:
            self.database_unreachable_since = time.monotonic()
            log.warning("PostgreSQL unreachable (%r); retrying with backoff", exc)

    def _database_ok(self) -> None:
        if self.database_unreachable_since is not None:
            log.info(
                "PostgreSQL reachable again after %.1fs",
                time.monotonic() - self.database_unreachable_since,
            )
            self.database_unreachable_since = None

    def take_touched_variants(self) -> set[str]:
        out, self._touched_variants = self._touched_variants, set()
        return out

    def requeue_touched_variants(self, variants: set[str]) -> None:
        self._touched_variants |= variants

    # ------------------------------------------------------------------ rebalance
    async def on_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        parts = {tp.partition for tp in revoked if tp.topic == self.topic}
        if not parts:
            return
        await self._wait_flush()
        try:
            await self._flush_now()  # best effort: keep the progress made so far
        except Exception as exc:  # noqa: BLE001 - PostgreSQL stays the truth; the owner re-reads
            log.warning("final flush before revocation failed: %r", exc)
        for p in parts:
            self.partitions.pop(p, None)
            with contextlib.suppress(KeyError):
                self.metrics.consumer_lag.remove(self.topic, str(p))
        self.metrics.assigned_partitions.set(len(self.partitions))

    async def on_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        parts = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
        new = [p for p in parts if p not in self.partitions]
        if new:
            await self._load(new)
        self.metrics.assigned_partitions.set(len(self.partitions))
        self.ready.set()

    async def _load(self, parts: Sequence[int]) -> None:
        """(Re)load partitions from PostgreSQL and seek the consumer to their offsets."""
        assert self.consumer is not None
        delay = 0.5
        while True:
            try:
                async with self.pool.acquire() as conn:
                    progress = await sink.claim_partitions(conn, self.group, self.topic, parts)
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.last_error = repr(exc)
                # a trivial statement: failing it means no usable database (e.g. one that
                # refuses connections while it starts, or is closed to new connections)
                self._database_failed(exc, certain=True)
                log.warning(
                    "loading partitions %s failed (%r); retrying in %.1fs", parts, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._database_ok()
        assigned = {tp.partition for tp in self.consumer.assignment() if tp.topic == self.topic}
        for p in parts:
            if p not in assigned:  # revoked while we were reading PostgreSQL
                self.partitions.pop(p, None)
                continue
            next_offset, watermark = progress[p]
            # a partition with no progress has no rows yet: its cache starts complete
            self.partitions[p] = PartitionState(
                p, next_offset, watermark, complete=next_offset == 0
            )
            self.consumer.seek(TopicPartition(self.topic, p), next_offset)
            if watermark is not None:
                self.metrics.watermark.labels(str(p)).set(watermark)
        log.info(
            "partitions %s loaded: %s",
            list(parts),
            {p: progress[p][0] for p in parts if p in self.partitions},
        )

    # ------------------------------------------------------------------ consume loop
    async def _run(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        s = self.settings
        interval = s.aggregator_flush_interval_s
        while not self._stopping:
            try:
                if self._resync:
                    await self._do_resync()
                wait_ms = max(10, int((self._last_flush + interval - time.monotonic()) * 1000))
                records = await consumer.getmany(
                    timeout_ms=min(wait_ms, 500), max_records=s.aggregator_fetch_max_records
                )
                if records:
                    await self._ingest(records)
                pending = self._pending_count()
                self.metrics.pending_records.set(pending)
                now = time.monotonic()
                flushing = self._flush_task is not None and not self._flush_task.done()
                if not flushing and (
                    pending >= s.aggregator_flush_max_events
                    or (now - self._last_flush >= interval and self._has_progress())
                ):
                    self._last_flush = now
                    self._flush_task = asyncio.create_task(self._flush_guarded())
                elif flushing and pending >= s.aggregator_max_pending_events:
                    await self._wait_flush()  # backpressure
                elif not flushing and now - self._last_flush >= interval:
                    self._last_flush = now
                if now - self._last_lag_update >= 1.0:
                    self._last_lag_update = now
                    self._update_lag()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = repr(exc)
                log.exception("executions loop error; re-reading owned partitions")
                self._resync.update(self.partitions)
                await asyncio.sleep(1.0)

    async def _ingest(self, records: dict[TopicPartition, list[Any]]) -> None:
        """Decode a fetched batch and append it to the partitions' pending buffers.

        Phase 1 decodes without awaiting; phase 2 sends the dead letters (awaits: a flush
        may take the buffers meanwhile); phase 3 appends to the CURRENT buffers without
        awaiting, so a buffer's offsets never cover a record whose dead letter is not in
        that same buffer's futures.
        """
        s = self.settings
        max_bytes = s.aggregator_max_event_bytes
        lateness = self._lateness_s
        skew = s.aggregator_max_future_skew_s
        now_s = time.time()
        decoded: list[tuple[PartitionState, Pending, list[tuple[Any, Rejection]]]] = []
        skipped = 0
        for tp, recs in records.items():
            st = self.partitions.get(tp.partition)
            if st is None or tp.partition in self._resync:
                continue
            part = Pending()
            execs, times = part.executions, part.timestamps
            rejected: list[tuple[Any, Rejection]] = []
            read_offset = st.read_offset
            watermark = st.read_watermark_s
            for rec in recs:
                off = rec.offset
                if off < read_offset:
                    skipped += 1
                    continue
                read_offset = off + 1
                res = decode_execution(rec.value, max_bytes, tp.partition, off)
                if type(res) is Rejection:
                    rejected.append((rec, res))
                    continue
                ex: Any = res
                completed = ex.completed_s
                if completed > now_s + skew or (
                    watermark is not None and completed < watermark - lateness
                ):
                    code = classify_time(completed, watermark, lateness, now_s, skew)
                    msg = (
                        "completed_at is more than the allowed lateness before the partition watermark"
                        if code == "too_late"
                        else "completed_at is too far in the future"
                    )
                    rejected.append((rec, Rejection(str(code), msg)))
                    continue
                if watermark is None or completed > watermark:
                    watermark = completed
                execs.append(ex)
                times.append(rec.timestamp)
            part.next_offset = read_offset
            part.watermark_s = watermark
            decoded.append((st, part, rejected))
        for st, part, rejected in decoded:
            for rec, rej in rejected:
                letter = make_dead_letter(
                    topic=self.topic,
                    partition=st.partition,
                    offset=rec.offset,
                    key=rec.key,
                    value=rec.value,
                    rejection=rej,
                )
                fut = await self.producer.send(
                    self.dlq_topic, letter, key=f"{self.topic}:{st.partition}:{rec.offset}".encode()
                )
                part.futures.append(fut)
                part.dead_letters += 1
                self.metrics.dead_letters.labels(self.topic, rej.code).inc()
        dead = 0
        for st, part, _ in decoded:
            if self.partitions.get(st.partition) is not st or st.partition in self._resync:
                continue  # revoked or re-read meanwhile: these records will be read again
            pending = st.pending
            pending.executions.extend(part.executions)
            pending.timestamps.extend(part.timestamps)
            pending.futures.extend(part.futures)
            pending.dead_letters += part.dead_letters
            pending.next_offset = part.next_offset
            pending.watermark_s = part.watermark_s
            st.read_offset = part.next_offset if part.next_offset is not None else st.read_offset
            st.read_watermark_s = part.watermark_s
            dead += part.dead_letters
        if skipped:
            self._ev_skip.inc(skipped)
        if dead:
            self._ev_dead.inc(dead)

    def _pending_count(self) -> int:
        return sum(len(st.pending) for st in self.partitions.values())

    def _has_progress(self) -> bool:
        return any(
            st.pending.next_offset is not None and st.pending.next_offset > st.next_offset
            for st in self.partitions.values()
        )

    def _update_lag(self) -> None:
        if self.consumer is None:
            return
        for p, st in self.partitions.items():
            hw = self.consumer.highwater(TopicPartition(self.topic, p))
            if hw is not None:
                self.metrics.consumer_lag.labels(self.topic, str(p)).set(
                    max(0, hw - st.next_offset)
                )
        self.metrics.cached_rows.set(
            sum(len(st.versions) + len(st.experiments) for st in self.partitions.values())
        )

    # ------------------------------------------------------------------ flushing
    async def _wait_flush(self) -> None:
        task = self._flush_task
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def _flush_guarded(self) -> None:
        with contextlib.suppress(Exception):  # failures schedule a resync of the partitions
            await self._flush_now()

    async def _flush_now(self) -> None:
        """Apply everything pending in one transaction; on failure schedule a resync."""
        async with self._flush_lock:
            batches: dict[int, sink.PartitionBatch] = {}
            futures: list[Any] = []
            timestamps: list[int] = []
            for p, st in self.partitions.items():
                if p in self._resync:
                    continue
                nxt = st.pending.next_offset
                if nxt is None or nxt <= st.next_offset:
                    continue
                pend = st.take_pending()
                batches[p] = sink.PartitionBatch(
                    partition=p,
                    base_offset=st.next_offset,
                    next_offset=nxt,
                    watermark_s=pend.watermark_s,
                    executions=pend.executions,
                    dead_letters=pend.dead_letters,
                )
                futures.extend(pend.futures)
                timestamps.extend(pend.timestamps)
            if not batches:
                return
            self._flush_seq += 1
            started = time.perf_counter()
            timings: dict[str, float] = {}
            try:
                if futures:  # dead letters are in Kafka before their offsets commit
                    await asyncio.gather(*futures)
                async with self.pool.acquire() as conn:
                    result = await sink.flush_executions(
                        conn,
                        group=self.group,
                        topic=self.topic,
                        batches=batches,
                        states=self.partitions,
                        writer=self.settings.aggregator_worker_id,
                        flush_seq=self._flush_seq,
                        timings=timings,
                    )
            except sink.StalePartitions as exc:
                self.metrics.flushes.labels("executions", "stale").inc()
                log.warning("%s; re-reading them from PostgreSQL", exc)
                self._schedule_resync(batches)
                raise
            except Exception as exc:
                self.metrics.flushes.labels("executions", "error").inc()
                self.failed_flushes_in_a_row += 1
                self.last_error = repr(exc)
                self._database_failed(exc)
                log.error("flush failed (%r); re-reading partitions %s", exc, sorted(batches))
                self._schedule_resync(batches)
                raise
            elapsed = time.perf_counter() - started
            committed = time.time()
            for phase, seconds in timings.items():
                self.metrics.sink_phase_seconds.labels(phase).inc(seconds)
            log.log(
                logging.INFO
                if elapsed > 2 * self.settings.aggregator_flush_interval_s
                else logging.DEBUG,
                "flush #%d: %d records of %d partitions, %d counted, %d+%d rows, %.3fs (%s)",
                self._flush_seq,
                sum(len(b.executions) + b.dead_letters for b in batches.values()),
                len(batches),
                sum(result.counted.values()),
                result.version_rows,
                result.experiment_rows,
                elapsed,
                " ".join(f"{k}={v:.3f}" for k, v in timings.items()),
            )
            self.failed_flushes_in_a_row = 0
            self._database_ok()
            self.last_flush_ok = committed
            self.metrics.sink_seconds.labels("executions").observe(elapsed)
            self.metrics.flushes.labels("executions", "ok").inc()
            self.metrics.rows_written.labels("workflow_executions").inc(result.raw_rows)
            self.metrics.rows_written.labels("version_performance_metrics").inc(result.version_rows)
            self.metrics.rows_written.labels("experiment_variant_metrics").inc(
                result.experiment_rows
            )
            self.metrics.rows_written.labels("aggregator_variant_durations").inc(
                result.variant_rows
            )
            self._ev_counted.inc(sum(result.counted.values()))
            self._ev_dup.inc(sum(result.duplicates.values()))
            step = max(1, len(timestamps) // 500)
            for ts in timestamps[::step]:
                self.metrics.freshness.observe(max(0.0, committed - ts / 1000.0))
            min_hour_lateness = self._lateness_s / 3600.0 + 1
            for p, b in batches.items():
                owned = self.partitions.get(p)
                if owned is None:
                    continue
                owned.next_offset = b.next_offset
                if b.watermark_s is not None:
                    owned.watermark_s = b.watermark_s
                    self.metrics.watermark.labels(str(p)).set(b.watermark_s)
                    owned.evict_before(int(b.watermark_s // 3600 - min_hour_lateness))
            self._touched_variants |= result.variants
            per_partition_cap = max(
                100, self.settings.aggregator_state_cache_rows // max(1, len(self.partitions))
            )
            for state in self.partitions.values():
                state.evict_coldest(per_partition_cap)

    def _schedule_resync(self, batches: Iterable[int]) -> None:
        for p in batches:
            st = self.partitions.get(p)
            if st is not None:
                st.clear_cache()
                st.pending = Pending()
            self._resync.add(p)

    async def _do_resync(self) -> None:
        await self._wait_flush()
        parts = sorted(p for p in self._resync if p in self.partitions)
        self._resync.clear()
        if not parts:
            return
        await asyncio.sleep(0.2 if self.failed_flushes_in_a_row < 2 else 2.0)
        await self._load(parts)


class ExposureProcessor:
    """Decode, dead-letter and store one batch of exposure records."""

    name = "exposures"

    def __init__(
        self,
        settings: AggregatorSettings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        metrics: AggregatorMetrics,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.metrics = metrics
        self.topic = settings.exposures_topic
        self.dlq_topic = DEAD_LETTER.full_name(settings.topic_prefix)

    async def process(self, records: Sequence[tuple[int, int, bytes | None, bytes | None]]) -> int:
        """``(partition, offset, key, value)`` records → rows changed. Retries until stored."""
        good: list[Exposure] = []
        futures: list[Any] = []
        for partition, offset, key, value in records:
            res = decode_exposure(value, self.settings.aggregator_max_event_bytes)
            if isinstance(res, Rejection):
                letter = make_dead_letter(
                    topic=self.topic,
                    partition=partition,
                    offset=offset,
                    key=key,
                    value=value,
                    rejection=res,
                )
                futures.append(
                    await self.producer.send(
                        self.dlq_topic, letter, key=f"{self.topic}:{partition}:{offset}".encode()
                    )
                )
                self.metrics.dead_letters.labels(self.topic, res.code).inc()
                self.metrics.events.labels(self.topic, "dead_letter").inc()
            else:
                good.append(res)
        if futures:
            await asyncio.gather(*futures)
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                async with self.pool.acquire() as conn:
                    changed = await sink.insert_exposures(conn, good)
                break
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.metrics.flushes.labels("exposures", "error").inc()
                log.warning("storing %d exposures failed (%r); retrying", len(good), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.metrics.sink_seconds.labels("exposures").observe(time.perf_counter() - started)
        self.metrics.flushes.labels("exposures", "ok").inc()
        self.metrics.rows_written.labels("experiment_exposures").inc(changed)
        self.metrics.events.labels(self.topic, "counted").inc(len(good))
        return changed


async def maintenance_tick(
    pipeline: ExecutionsPipeline,
    pool: asyncpg.Pool,
    settings: AggregatorSettings,
    metrics: AggregatorMetrics,
) -> None:
    """Refresh the cached variant metrics of the variants touched since the last tick."""
    variants = pipeline.take_touched_variants()
    if not variants:
        return
    started = time.perf_counter()
    try:
        async with pool.acquire() as conn:
            n = await sink.refresh_variant_metrics(conn, variants)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("refreshing variant metrics failed (%r)", exc)
        pipeline.requeue_touched_variants(variants)
        return
    metrics.sink_seconds.labels("schema_variants").observe(time.perf_counter() - started)
    metrics.rows_written.labels("schema_variants").inc(n)


async def retention_tick(pool: asyncpg.Pool, settings: AggregatorSettings) -> int:
    days = settings.aggregator_raw_retention_days
    if days <= 0:
        return 0
    cutoff = datetime.now(UTC) - timedelta(days=days)
    async with pool.acquire() as conn:
        return await sink.purge_raw_executions(conn, cutoff)
