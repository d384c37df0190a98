"""The read side of the outbox: publish pending config rows to the compacted topic.

One relay per database is active at a time: it holds ``pg_advisory_lock(key)`` on a
dedicated connection (other replicas wait for it, and take over when that connection
dies). The active relay loops:

1. read up to ``batch_size`` rows with ``published_at IS NULL`` in ``id`` order;
2. send each to the config topic (key = ``str(schema_id)``, value = the stored
   AssignmentConfig JSON, or null for a tombstone) with the idempotent producer, and
   wait until the broker acknowledged all of them;
3. set ``published_at`` on exactly those rows.

A crash between 2 and 3 sends the rows again after the restart: delivery is at least
once; consumers keep the highest ``revision`` per schema, so duplicates change
nothing. Per schema the rows' id order is their revision order (writers serialise on
the schema row) and the topic has one partition, so revisions reach consumers in order.
The relay wakes on ``NOTIFY config_outbox`` (sent by the insert trigger at commit)
and otherwise rescans every ``poll_interval_s``.

Retention: every ``retention_interval_s`` the active relay deletes published rows older
than ``retention_s``, except each schema's latest row (the writers compare a new config
with it to skip no-op changes; the revision counter itself lives on the schema row).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

__all__ = ["STALLED_AFTER_S", "OutboxRelay", "RelayMetrics"]

_CHANNEL = "config_outbox"
STALLED_AFTER_S = 10.0
"""A config row pending longer than this makes /health say the relay is stalled (degraded):
assignment serves an older config meanwhile."""


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "abflow_control_outbox_published_total",
            "Outbox rows published to the config topic (re-sends after a crash included)",
            ["event_type"],
            registry=registry,
        )
        self.errors = Counter(
            "abflow_control_relay_errors_total",
            "Relay iterations that failed (database or Kafka), by kind",
            ["kind"],
            registry=registry,
        )
        self.leader = Gauge(
            "abflow_control_relay_leader",
            "1 while this process holds the relay lock and publishes",
            registry=registry,
        )
        self.purged = Counter(
            "abflow_control_outbox_purged_total",
            "Published outbox rows deleted by the retention pass",
            registry=registry,
        )
        self.lag = Gauge(
            "abflow_control_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished outbox row seen by the active relay",
            registry=registry,
        )


class OutboxRelay:
    """Publishes ``config_outbox`` to the config topic; see the module docstring."""

    def __init__(
        self,
        *,
        dsn: str,
        topic: str,
        producer_factory: Callable[[], AIOKafkaProducer],
        metrics: RelayMetrics,
        lock_key: int,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        retention_s: float = 7 * 86400,
        retention_interval_s: float = 3600,
    ) -> None:
        self._dsn = dsn
        self.topic = topic
        self._producer_factory = producer_factory
        self._metrics = metrics
        self._lock_key = lock_key
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retention_s = retention_s
        self._retention_interval_s = retention_interval_s
        self._next_purge = 0.0  # monotonic time of the next retention pass
        self.purged = 0
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self.leader = False
        self.published = 0
        self.last_error: str | None = None
        self.last_published_at: datetime | None = None
        # created_at of the oldest row this relay is trying to publish (None: nothing
        # pending that it knows of); a send blocked on an absent broker shows up here long
        # before its request times out and sets last_error
        self.pending_since: datetime | None = None

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="control-outbox-relay")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_producer()
        self._set_leader(False)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def health(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "leader": self.leader,
            "published": self.published,
            "last_published_at": None
            if self.last_published_at is None
            else self.last_published_at.isoformat(),
            "last_error": self.last_error,
            "oldest_pending_s": None
            if self.pending_since is None
            else round((datetime.now(UTC) - self.pending_since).total_seconds(), 1),
            "stalled": self.stalled,
        }

    @property
    def stalled(self) -> bool:
        """A row has waited more than :data:`STALLED_AFTER_S` to be published."""
        since = self.pending_since
        return since is not None and (datetime.now(UTC) - since).total_seconds() > STALLED_AFTER_S

    # -- loop ----------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self._poll_interval_s
        while True:
            published_before = self.published
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                self._fail("database", exc)
            except KafkaError as exc:
                self._fail("kafka", exc)
                await self._close_producer()  # a fresh idempotent session next time
            self._set_leader(False)
            if self.published != published_before:
                backoff = self._poll_interval_s  # it worked for a while: start over
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _fail(self, kind: str, exc: BaseException) -> None:
        self.last_error = f"{kind}: {exc.__class__.__name__}: {exc}"
        self._metrics.errors.labels(kind).inc()
        log.warning("outbox relay: %s", self.last_error)

    def _set_leader(self, value: bool) -> None:
        self.leader = value
        if not value:
            self.pending_since = None  # another replica may be publishing now
        self._metrics.leader.set(1 if value else 0)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def _lead(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=10)
        try:
            # blocks while another replica publishes; cancelling the task cancels the query
            await conn.execute("SELECT pg_advisory_lock($1)", self._lock_key)
            self._set_leader(True)
            await conn.add_listener(_CHANNEL, self._notified)
            while True:
                self._wake.clear()
                sent = await self.publish_pending(conn)
                if time.monotonic() >= self._next_purge:
                    await self.purge_published(conn)
                    self._next_purge = time.monotonic() + self._retention_interval_s
                self.last_error = None
                if sent < self._batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
        finally:
            self._set_leader(False)
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def purge_published(self, conn: asyncpg.Connection) -> int:
        """Delete published rows older than the retention, keeping each schema's latest."""
        status = await conn.execute(
            """
            DELETE FROM config_outbox o
             WHERE o.published_at < now() - make_interval(secs => $1)
               AND EXISTS (SELECT 1 FROM config_outbox n
                            WHERE n.schema_id = o.schema_id AND n.revision > o.revision)
            """,
            float(self._retention_s),
        )
        deleted = int(status.split()[-1])
        self.purged += deleted
        if deleted:
            self._metrics.purged.inc(deleted)
            log.info("outbox relay: purged %d published rows", deleted)
        return deleted

    async def publish_pending(self, conn: asyncpg.Connection) -> int:
        """Publish one batch of pending rows in id order; return how many were sent."""
        rows = await conn.fetch(
            """
            SELECT id, schema_id, event_type, payload::text AS payload, created_at
              FROM config_outbox
             WHERE published_at IS NULL
             ORDER BY id
             LIMIT $1
            """,
            self._batch_size,
        )
        if not rows:
            self._metrics.lag.set(0)
            self.pending_since = None
            return 0
        self.pending_since = rows[0]["created_at"]
        self._metrics.lag.set(max(0.0, (datetime.now(UTC) - rows[0]["created_at"]).total_seconds()))
        producer = await self._ensure_producer()
        futures = [
            await producer.send(
                self.topic,
                key=str(row["schema_id"]).encode(),
                value=None if row["payload"] is None else row["payload"].encode(),
            )
            for row in rows
        ]
        for fut in futures:
            await fut  # raises the KafkaError of a failed delivery
        await conn.execute(
            "UPDATE config_outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
            [row["id"] for row in rows],
        )
        for row in rows:
            self._metrics.published.labels(row["event_type"]).inc()
        self.published += len(rows)
        self.last_published_at = datetime.now(UTC)
        if len(rows) < self._batch_size:
            self.pending_since = None  # that was all of it
        return len(rows)
