"""The Faust app of the aggregator worker, built from settings.

- :class:`AggregatorRuntime` (a ``mode.Service``, started by the Faust worker before the
  app): topics, the PostgreSQL pool, the dead-letter producer and the
  :class:`~services.aggregator.agents.ExecutionsPipeline`.
- the ``exposures`` agent: ``take_events`` batches → :class:`ExposureProcessor`;
- timers: cached variant metrics, raw-execution retention;
- web views on ``AGGREGATOR_WEB_PORT``: ``GET /health`` (JSON, 200 unless a component is
  down) and ``GET /metrics`` (Prometheus: our metrics and Faust's sensors).
"""

from __future__ import annotations

import asyncio
import logging
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
from shared.kafka import ensure_topics, make_producer, retry_start
from shared.topics import DEAD_LETTER, EXECUTIONS, EXPOSURES

log = logging.getLogger(__name__)

__all__ = ["AggregatorRuntime", "create_app"]


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

    async def on_stop(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.stop()
        if self.producer is not None:
            await self.producer.stop()
        if self.pool is not None:
            await self.pool.close()

    def health(self) -> dict[str, Any]:
        if self.pipeline is None:
            return {"status": "ok", "ready": False, "detail": "starting"}
        return self.pipeline.health()


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

    @app.page("/health")
    async def health(self: Any, request: Any) -> Any:
        report = runtime.health()
        status = report.get("status", "ok")
        body = {
            "status": status,
            "service": "aggregator",
            "worker": s.aggregator_worker_id,
            "components": {"executions": report},
        }
        return self.json(body, status=503 if status == "down" else 200)

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
