"""The control plane as a :class:`~shared.http.Component` of the assignment service.

It owns the asyncpg pool of the control API and the outbox relay (with its idempotent
Kafka producer). Routes reach it through ``request.app.state.control``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter

from shared.db.pool import PoolProbe, create_pool
from shared.kafka import make_producer
from shared.topics import CONFIG

from .audit import RequestContext
from .pgerrors import ServiceUnavailable
from .relay import OutboxRelay, RelayMetrics
from .settings import ControlSettings
from .uow import UnitOfWork, run_in_transaction, run_read

__all__ = ["ControlPlane"]

T = TypeVar("T")


class ControlPlane:
    """Pool + outbox relay; ``write``/``read`` run the API's units of work."""

    name = "control"

    def __init__(self, settings: ControlSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.topic = CONFIG.full_name(settings.topic_prefix)
        self._pool: asyncpg.Pool | None = None
        self._probe: PoolProbe | None = None
        self.mutations = Counter(
            "abflow_control_mutations_total",
            "Committed control API mutations by entity and action",
            ["entity", "action"],
            registry=registry,
        )
        self.relay = OutboxRelay(
            dsn=settings.database_url,
            topic=self.topic,
            producer_factory=self._make_producer,
            metrics=RelayMetrics(registry),
            lock_key=settings.relay_lock_key,
            batch_size=settings.relay_batch_size,
            poll_interval_s=settings.relay_poll_interval_s,
            retention_s=settings.outbox_retention_s,
            retention_interval_s=settings.outbox_retention_interval_s,
        )

    def _make_producer(self) -> AIOKafkaProducer:
        return make_producer(
            self.settings.kafka_bootstrap_servers, client_id="abflow-control-relay"
        )

    # -- Component -------------------------------------------------------------------
    async def start(self) -> None:
        self._pool = await create_pool(
            self.settings.database_url,
            min_size=self.settings.pool_min_size,
            max_size=self.settings.pool_max_size,
        )
        self._probe = PoolProbe(self._pool, self.settings.database_url)
        self._probe.start()
        if self.settings.relay_enabled:
            self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
        probe, self._probe = self._probe, None
        if probe is not None:
            await probe.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def health(self) -> dict[str, Any]:
        if self._pool is None:
            return {"status": "down", "ready": False, "pool": None}
        relay = self.relay.health()
        probe = self._probe.report() if self._probe is not None else {"database": "reachable"}
        # without its database the control API answers 503, but the assignment hot path
        # goes on from its snapshot: the service is degraded, not down
        degraded = probe["database"] != "reachable" or (
            self.settings.relay_enabled
            and (not relay["running"] or relay["last_error"] is not None or relay["stalled"])
        )
        return {
            "status": "degraded" if degraded else "ok",
            "ready": True,
            **probe,
            "pool": {"size": self._pool.get_size(), "idle": self._pool.get_idle_size()},
            "relay": {"enabled": self.settings.relay_enabled, **relay},
            "topic": self.topic,
        }

    # -- units of work ---------------------------------------------------------------
    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise ServiceUnavailable("the control plane is not started")
        return self._pool

    async def write(
        self,
        ctx: RequestContext,
        work: Callable[[UnitOfWork], Awaitable[T]],
        *,
        entity: str,
        action: str,
    ) -> T:
        """Run a mutation in one transaction (audit and outbox rows included)."""
        result = await run_in_transaction(
            self.pool, ctx, work, retries=self.settings.transaction_retries
        )
        self.mutations.labels(entity, action).inc()
        return result

    async def read(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        return await run_read(self.pool, work)
