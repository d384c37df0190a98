"""The Faust app of the aggregator worker, built from settings.

- :class:`AggregatorRuntime` (a ``mode.Service``, started by the Faust worker before the
  app): topics, the PostgreSQL pool, the dead-letter producer and the
  :class:`~services.aggregator.agents.ExecutionsPipeline`.
- the ``exposures`` agent: ``take_events`` batches → :class:`ExposureProcessor`;
- timers: cached variant metrics, raw-execution retention;
- web views on ``AGGREGATOR_WEB_PORT``: ``GET /health`` (JSON, 200 unless a component is
  down), ``GET /health/ready`` (200 once both consumers have joined their groups, else
  503) and ``GET /metrics`` (Prometheus: our metrics and Faust's sensors).

:class:`AggregatorWorker` is the Faust worker with a shutdown that cannot lose the last
flush to a slow Faust stop: see its docstring.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from typing import Any

import asyncpg
import faust
import mode
from aiokafka import AIOKafkaProducer
from faust.sensors.prometheus import setup_prometheus_sensors

from services.aggregator import sink
from services.aggregator.agents import (
    ExecutionsPipeline,
    ExposureProcessor,
    maintenance_tick,
    retention_tick,
)
from services.aggregator.metrics import AggregatorMetrics
from services.aggregator.settings import AggregatorSettings
from shared.health import overall_status
from shared.kafka import ensure_topics, make_producer, retry_start
from shared.topics import DEAD_LETTER, EXECUTIONS, EXPOSURES

log = logging.getLogger(__name__)

__all__ = ["AggregatorRuntime", "AggregatorWorker", "create_app"]


class AggregatorRuntime(mode.Service):
    """Connections and the executions pipeline of one worker."""

    def __init__(
        self, settings: AggregatorSettings, metrics: AggregatorMetrics, **kwargs: Any
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.pipeline: ExecutionsPipeline | None = None
        self.exposures: ExposureProcessor | None = None
        self.ready_event = asyncio.Event()
        #: set once the Faust consumer (exposures agent) got its first assignment
        self.exposures_assigned = asyncio.Event()
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        s = self.settings
        if s.aggregator_create_topics:
            await ensure_topics(
                s.kafka_bootstrap_servers,
                (EXECUTIONS, EXPOSURES, DEAD_LETTER),
                prefix=s.topic_prefix,
                partitions={
                    EXECUTIONS.name: s.aggregator_executions_partitions,
                    EXPOSURES.name: s.aggregator_exposures_partitions,
                },
            )
        self.pool = await sink.create_sink_pool(
            s.database_url, min_size=2, max_size=s.aggregator_db_pool_size
        )
        self.producer = make_producer(s.kafka_bootstrap_servers, linger_ms=5)
        await retry_start(self.producer.start, "Kafka producer")
        self.pipeline = ExecutionsPipeline(s, self.pool, self.producer, self.metrics)
        await self.pipeline.start()
        self.exposures = ExposureProcessor(s, self.pool, self.producer, self.metrics)
        self.ready_event.set()
        log.info(
            "aggregator %s consuming %s (group %s)",
            s.aggregator_worker_id,
            s.executions_topic,
            s.executions_group,
        )

    async def drain(self) -> None:
        """Last flush of the executions pipeline, its offsets committed, its consumer out
        of the group. Idempotent; the pool and producer stay open for the exposures agent."""
        if self.pipeline is not None:
            await self.pipeline.stop()

    async def on_stop(self) -> None:
        await self.drain()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

    def health(self) -> dict[str, Any]:
        """``{"status", "ready", "components": {"executions": ..., "exposures": ...}}``:
        ready once the executions consumer is reading and the Faust consumer (exposures)
        has had its first partition assignment; status is the worst component's."""
        executions = (
            {"status": "ok", "ready": False, "detail": "starting"}
            if self.pipeline is None
            else self.pipeline.health()
        )
        exposures = {"status": "ok", "ready": self.exposures_assigned.is_set()}
        components = {"executions": executions, "exposures": exposures}
        ready = all(c["ready"] for c in components.values())
        return {
            "status": overall_status(components.values()),
            "ready": ready,
            "components": components,
        }


class AggregatorWorker(faust.Worker):
    """The Faust worker, with a stop that drains first and is bounded.

    A worker stops its services in reverse start order: Faust's app, then the runtime.
    Here the executions pipeline is drained first (last flush committed, group left),
    then a join or rebalance of Faust's consumer is let finish (see ``_settle_group``),
    then the rest of the stop gets ``shutdown_timeout_s``: past it the process logs what
    it was waiting for and exits 0, nothing being lost (executions are committed;
    exposures are stored idempotently and replayed from Faust's last commit)."""

    def __init__(
        self,
        app: faust.App,
        runtime: AggregatorRuntime,
        *,
        shutdown_timeout_s: float,
        **kwargs: Any,
    ) -> None:
        self.runtime = runtime
        self.shutdown_timeout_s = shutdown_timeout_s
        super().__init__(app, runtime, **kwargs)

    async def on_stop(self) -> None:
        await self.runtime.drain()
        await self._settle_group()
        timer = threading.Timer(self.shutdown_timeout_s, self._exit_stuck)
        timer.daemon = True
        timer.start()
        await super().on_stop()

    async def _settle_group(self) -> None:
        """Let a join or rebalance of Faust's consumer finish before stopping the app
        (at most ``shutdown_timeout_s``): its partitions-revoked callback runs on this
        loop, and once the app is stopping nothing answers it, so the consumer thread's
        stop would wait on its group coordinator forever (a SIGTERM during start-up did,
        in 2 of 6 runs of the start-up test before this wait)."""
        consumer = self.app.consumer
        deadline = time.monotonic() + self.shutdown_timeout_s
        while consumer.state == "running" and time.monotonic() < deadline:
            if self.runtime.exposures_assigned.is_set() and not self.app.rebalancing:
                return
            await asyncio.sleep(0.05)

    def _exit_stuck(self) -> None:
        log.error(
            "stop still running %.1f s after the last flush (Faust's %s); exiting now: "
            "the executions were committed and exposures are replayed idempotently",
            self.shutdown_timeout_s,
            ", ".join(_stopping_services(self.app)) or "app",
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(0)


def _stopping_services(app: mode.ServiceT) -> list[str]:
    """Faust's services that are stopping but not yet shut down (for the log)."""
    found: list[str] = []
    pending: list[Any] = [app]
    while pending:
        svc = pending.pop()
        children = [c for c in getattr(svc, "_children", ()) if c is not None]
        if svc.state == "stopping":
            found.append(svc.label)
        pending.extend(children)
    return found


def _broker_url(bootstrap: str) -> str:
    return ";".join(f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip())


def create_app(
    settings: AggregatorSettings, metrics: AggregatorMetrics | None = None
) -> tuple[faust.App, AggregatorRuntime]:
    """The Faust app and the runtime service to pass to ``faust.Worker`` before it."""
    metrics = metrics or AggregatorMetrics()
    s = settings
    app = faust.App(
        s.faust_app_id,
        broker=_broker_url(s.kafka_bootstrap_servers),
        datadir=s.aggregator_data_dir,
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=True,
        web_bind=s.aggregator_web_host,
        web_host=s.aggregator_web_host,
        web_port=s.aggregator_web_port,
        web_in_thread=False,
        broker_session_timeout=s.aggregator_session_timeout_s,
        broker_heartbeat_interval=s.aggregator_heartbeat_interval_s,
        broker_rebalance_timeout=max(30.0, s.aggregator_session_timeout_s * 3),
        broker_request_timeout=max(40.0, s.aggregator_session_timeout_s * 4),
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=s.aggregator_exposures_partitions,
        table_standby_replicas=0,
        producer_acks=-1,
        worker_redirect_stdouts=False,
    )
    runtime = AggregatorRuntime(s, metrics)
    setup_prometheus_sensors(
        app, pattern="/metrics", registry=metrics.registry, name_prefix="abflow_aggregator_faust"
    )

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        runtime.exposures_assigned.set()

    def health_body() -> dict[str, Any]:
        return {"service": "aggregator", "worker": s.aggregator_worker_id, **runtime.health()}

    @app.page("/health")
    async def health(self: Any, request: Any) -> Any:
        body = health_body()
        return self.json(body, status=503 if body["status"] == "down" else 200)

    @app.page("/health/ready")
    async def health_ready(self: Any, request: Any) -> Any:
        body = health_body()
        return self.json(body, status=200 if body["ready"] else 503)

    exposures_topic = app.topic(s.exposures_topic, value_serializer="raw", key_serializer="raw")

    @app.agent(exposures_topic, name="exposures")
    async def exposures(stream: Any) -> None:
        async for events in stream.take_events(5000, within=s.aggregator_flush_interval_s):
            await runtime.ready_event.wait()
            assert runtime.exposures is not None
            await runtime.exposures.process(
                [
                    (e.message.partition, e.message.offset, e.message.key, e.message.value)
                    for e in events
                ]
            )

    @app.timer(s.aggregator_variant_metrics_interval_s, name="variant_metrics")  # type: ignore[untyped-decorator]
    async def variant_metrics() -> None:
        if runtime.pipeline is not None and runtime.pool is not None:
            await maintenance_tick(runtime.pipeline, runtime.pool, s, metrics)

    @app.timer(600.0, name="raw_retention")  # type: ignore[untyped-decorator]
    async def raw_retention() -> None:
        if runtime.pool is not None and s.aggregator_raw_retention_days > 0:
            n = await retention_tick(runtime.pool, s)
            if n:
                log.info("retention: deleted %d raw executions", n)

    return app, runtime
