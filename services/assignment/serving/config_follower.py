"""Follows the compacted config topic into the in-memory :class:`Snapshot`.

At start it reads every partition of the topic from the beginning up to the end
offsets it asked for (the last stable offsets: the consumer reads committed records
only), and only then reports ready. Afterwards it keeps consuming and applies each
record as it arrives.

Every ``probe_interval_s`` it asks Kafka for the end offsets again. When its positions
reach offsets obtained at time *t*, the snapshot holds everything published before *t*:
``snapshot_age_s`` is the time since the latest such *t*. A probe that fails or times
out marks Kafka unreachable (the consumer keeps retrying by itself); a consumer that
fails is closed and re-created with capped exponential backoff, resuming from the
offsets already applied. Meanwhile the last snapshot keeps being served and the health
report says ``degraded``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from shared.events import AssignmentConfig
from shared.kafka import ensure_topics, make_consumer
from shared.topics import CONFIG, EXPOSURES

from .aio import cancel_and_wait
from .dead_letters import DeadLetterSink
from .metrics import ServingMetrics
from .settings import ServingSettings
from .snapshot import Snapshot

__all__ = ["ConfigFollower"]

log = logging.getLogger(__name__)

ConsumerFactory = Callable[..., AIOKafkaConsumer]


class ConfigFollower:
    """Keeps a :class:`Snapshot` in step with the config topic."""

    def __init__(
        self,
        settings: ServingSettings,
        snapshot: Snapshot,
        metrics: ServingMetrics,
        *,
        consumer_factory: ConsumerFactory = make_consumer,
        clock: Callable[[], float] = time.monotonic,
        dead_letters: DeadLetterSink | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.metrics = metrics
        self.topic = settings.config_topic
        #: bootstrap servers used at each (re)connect
        self.bootstrap = settings.kafka_bootstrap_servers
        self._consumer_factory = consumer_factory
        #: where records that cannot be applied are published (None: counted only)
        self.dead_letters = dead_letters
        self._clock = clock
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        #: next offset to apply, per partition
        self.positions: dict[int, int] = {}
        self.connected = False
        self.last_synced: float | None = None
        self.loaded_at: float | None = None
        self.disconnected_since: float | None = None
        self.last_error: str | None = None
        self.reconnects = 0
        self._topics_ensured = False

    @property
    def loaded(self) -> bool:
        """True once the topic was read to its end once (the service is ready)."""
        return self._loaded.is_set()

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The current consumer (None between connections)."""
        return self._consumer

    def snapshot_age(self) -> float | None:
        """Seconds since the snapshot was last confirmed current, None before that."""
        return None if self.last_synced is None else self._clock() - self.last_synced

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Start following; wait up to ``readiness_timeout_s`` for the initial read."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="config-follower")
        timeout = self.settings.readiness_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        except TimeoutError:
            log.warning(
                "config follower: %s not read to its end after %.1fs; starting not ready (%s)",
                self.topic,
                timeout,
                self.last_error,
            )

    async def wait_loaded(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self._close_consumer()

    def health(self) -> dict[str, Any]:
        age = self.snapshot_age()
        stale = age is None or age > self.settings.stale_after_s
        if not self.loaded:
            status = "down"
        elif not self.connected or stale:
            status = "degraded"
        else:
            status = "ok"
        report: dict[str, Any] = {
            "status": status,
            "ready": self.loaded,
            "kafka": "connected" if self.connected else "unreachable",
            "topic": self.topic,
            "schemas": len(self.snapshot),
            "snapshot_age_s": None if age is None else round(age, 3),
            "offsets": dict(self.positions),
            "reconnects": self.reconnects,
        }
        if self.disconnected_since is not None:
            report["unreachable_for_s"] = round(self._clock() - self.disconnected_since, 3)
        if self.last_error is not None:
            report["last_error"] = self.last_error
        return report

    # --- the loop --------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.settings.reconnect_backoff_s
        delay = backoff
        while True:
            try:
                tps = await self._connect()
                delay = backoff
                await self._follow(tps)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect with backoff
                self._mark_unreachable(exc)
                self.reconnects += 1
                log.warning("config follower: %s; reconnecting in %.1fs", self.last_error, delay)
            await self._close_consumer()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.reconnect_backoff_max_s)

    def _mark_unreachable(self, exc: BaseException | None) -> None:
        if exc is not None:
            self.last_error = f"{exc.__class__.__name__}: {exc}"
        if self.connected or self.disconnected_since is None:
            self.disconnected_since = self._clock()
        self.connected = False
        self.metrics.kafka_connected.set(0)

    def _mark_connected(self) -> None:
        self.connected = True
        self.disconnected_since = None
        self.metrics.kafka_connected.set(1)

    async def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _connect(self) -> list[TopicPartition]:
        s = self.settings
        consumer = self._consumer_factory(
            self.bootstrap,
            group_id=None,
            client_id=f"abflow-serving-{s.replica_id}",
            request_timeout_ms=max(int(s.probe_timeout_s * 1000) * 3, 10_000),
            fetch_max_wait_ms=200,
        )
        self._consumer = consumer
        await consumer.start()
        if s.create_topics and not self._topics_ensured:
            async with asyncio.timeout(30):
                await ensure_topics(self.bootstrap, (CONFIG, EXPOSURES), prefix=s.topic_prefix)
            self._topics_ensured = True
        partitions = consumer.partitions_for_topic(self.topic) or await self._partitions()
        if not partitions:
            raise LookupError(f"config topic {self.topic} does not exist")
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        for tp in tps:
            position = self.positions.get(tp.partition)
            if position is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)
        return tps

    async def _partitions(self) -> set[int]:
        """The topic's partitions, from the cluster metadata."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.bootstrap,
            request_timeout_ms=int(self.settings.probe_timeout_s * 1000) * 3,
        )
        await admin.start()
        try:
            described = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        return {
            int(p["partition"])
            for t in described
            if t["topic"] == self.topic and not t.get("error_code")
            for p in t["partitions"]
        }

    async def _probe(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict[int, int]:
        """The end offsets now; raises when Kafka does not answer in time."""
        async with asyncio.timeout(self.settings.probe_timeout_s):
            ends = await consumer.end_offsets(tps)
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def _follow(self, tps: list[TopicPartition]) -> None:
        consumer = self._consumer
        assert consumer is not None
        interval = self.settings.probe_interval_s
        guard = 0.1 + self.settings.probe_timeout_s
        probed_at = self._clock()
        ends = await self._probe(consumer, tps)  # raises: reconnect
        self._mark_connected()
        self.last_error = None
        target: tuple[float, dict[int, int]] | None = (probed_at, ends)
        while True:
            # every await on the consumer is bounded: a consumer that stops answering
            # (closed under us, or stuck) raises TimeoutError here and is re-created
            async with asyncio.timeout(guard):
                batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batches.values():
                for record in records:
                    self._apply(record.key, record.value, record.offset, record.partition)
            for tp in tps:
                async with asyncio.timeout(guard):
                    self.positions[tp.partition] = int(await consumer.position(tp))
            self.metrics.snapshot_offset.set(sum(self.positions.values()))
            if target is not None and all(
                self.positions.get(p, 0) >= end for p, end in target[1].items()
            ):
                self.last_synced = target[0]
                target = None
                if not self.loaded:
                    self._loaded.set()
                    self.loaded_at = self._clock()
                    log.info(
                        "config follower: %s read to its end: %d schemas",
                        self.topic,
                        len(self.snapshot),
                    )
            now = self._clock()
            if now - probed_at >= interval:
                probed_at = now
                try:
                    ends = await self._probe(consumer, tps)
                except (TimeoutError, Exception) as exc:  # noqa: BLE001 - Kafka away
                    self._mark_unreachable(exc)
                    continue
                if not self.connected:
                    log.info("config follower: Kafka reachable again")
                self._mark_connected()
                target = (now, ends)

    def _apply(
        self, key: bytes | None, value: bytes | None, offset: int, partition: int = 0
    ) -> None:
        outcome: str
        rejected: tuple[str, str] | None = None  # (error code, reason)
        try:
            if value is None:
                if key is None:
                    raise ValueError("tombstone without a key")
                outcome = self.snapshot.remove(UUID(key.decode()))
                if outcome == "unknown":
                    outcome = "removed"
            else:
                cfg = AssignmentConfig.model_validate_json(value)
                if key is not None and key != str(cfg.schema_id).encode():
                    log.warning(
                        "config record at offset %d: key %r is not its schema id %s",
                        offset,
                        key,
                        cfg.schema_id,
                    )
                outcome = self.snapshot.apply(cfg)
        except ValidationError as exc:
            outcome = "invalid"
            log.warning("config record at offset %d ignored: %s", offset, exc)
            errors = exc.errors(include_url=False, include_input=False)
            code = "not_json" if errors and errors[0]["type"] == "json_invalid" else "schema_error"
            rejected = (code, f"not an AssignmentConfig: {exc}")
        except (ValueError, UnicodeDecodeError) as exc:
            outcome = "invalid"
            log.warning("config record at offset %d ignored: %s", offset, exc)
            rejected = ("invalid_value", f"{exc.__class__.__name__}: {exc}")
        except Exception as exc:  # a poison record must not stop the follower
            outcome = "invalid"
            log.exception("config record at offset %d could not be compiled", offset)
            rejected = ("compile_error", f"{exc.__class__.__name__}: {exc}")
        self.metrics.config_records.labels(outcome).inc()
        if rejected is not None and self.dead_letters is not None:
            self.dead_letters.offer(
                topic=self.topic,
                partition=partition,
                offset=offset,
                key=key,
                value=value,
                error_code=rejected[0],
                reason=rejected[1],
            )
