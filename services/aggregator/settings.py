"""Settings of the aggregator worker (environment variables, see ``docs/aggregator.md``)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

from pydantic import Field, model_validator

from shared.settings import BaseServiceSettings
from shared.topics import EXECUTIONS, EXPOSURES

MIB = 1024 * 1024


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class AggregatorSettings(BaseServiceSettings):
    """Every field reads the environment variable of the same name, upper-cased."""

    aggregator_web_host: str = Field(
        default="127.0.0.1", description="Bind address of /health and /metrics."
    )
    aggregator_web_port: int = Field(
        default=18003, ge=0, le=65535, description="HTTP port (AGGREGATOR_WEB_PORT)."
    )
    aggregator_data_dir: str = Field(
        default_factory=lambda: str(Path(tempfile.gettempdir()) / "abflow-aggregator"),
        description="Faust's data directory (AGGREGATOR_DATA_DIR); no aggregate state lives there.",
    )
    aggregator_group_id: str = Field(
        default="abflow-aggregator",
        min_length=1,
        description=(
            "Consumer group of the workers; also the key of their progress in aggregator_offsets. "
            "Every worker of one deployment uses the same value."
        ),
    )
    aggregator_worker_id: str = Field(
        default_factory=_default_worker_id, description="Name of this worker."
    )
    aggregator_flush_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Seconds between two transactional flushes to PostgreSQL.",
    )
    aggregator_flush_max_events: int = Field(
        default=50_000, ge=1, description="Flush early once this many records are pending."
    )
    aggregator_max_pending_events: int = Field(
        default=150_000,
        ge=1,
        description=(
            "While a flush runs the consumer keeps reading up to this many pending records "
            "(the next flush takes them all: flushes grow when the worker is behind). Memory "
            "in catch-up grows with it: peak RSS 0.6-0.7 GB at 150,000, 0.7-1.0 GB at "
            "300,000 (bench/aggregator.py, 1,000,000-record catch-up)."
        ),
    )
    aggregator_fetch_max_records: int = Field(
        default=10_000, ge=1, description="Records per consumer fetch (getmany max_records)."
    )
    aggregator_lateness_hours: float = Field(
        default=168.0,
        gt=0,
        description=(
            "Allowed lateness: an execution whose completed_at is older than its partition's "
            "watermark (largest completed_at applied) minus this is dead-lettered as too_late."
        ),
    )
    aggregator_max_future_skew_s: float = Field(
        default=3600.0,
        ge=0,
        description="An execution completed more than this many seconds after the wall clock is dead-lettered.",
    )
    aggregator_max_event_bytes: int = Field(
        default=MIB, ge=1024, description="Larger records are dead-lettered as oversize."
    )
    aggregator_executions_partitions: int = Field(
        default=EXECUTIONS.partitions,
        ge=1,
        description="Partitions of the executions topic when it is created.",
    )
    aggregator_exposures_partitions: int = Field(
        default=EXPOSURES.partitions,
        ge=1,
        description="Partitions of the exposures topic when it is created.",
    )
    aggregator_create_topics: bool = Field(
        default=True, description="Create missing topics at start."
    )
    aggregator_raw_retention_days: float = Field(
        default=0.0,
        ge=0,
        description=(
            "Delete workflow_executions rows whose completed_at is older than this many days "
            "(0 keeps them forever). Must exceed the lateness: raw rows are the duplicate filter."
        ),
    )
    aggregator_state_cache_rows: int = Field(
        default=200_000,
        ge=100,
        description="Hourly partial aggregates kept in memory; colder ones are reloaded from PostgreSQL.",
    )
    aggregator_variant_metrics_interval_s: float = Field(
        default=10.0, gt=0, description="Refresh period of the cached metrics in schema_variants."
    )
    aggregator_session_timeout_s: float = Field(
        default=10.0,
        ge=6,
        description="Kafka consumer group session timeout (broker minimum is 6 s).",
    )
    aggregator_heartbeat_interval_s: float = Field(default=1.0, gt=0)
    aggregator_shutdown_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="On SIGTERM/SIGINT the executions pipeline is flushed and committed "
        "first; the rest of the stop (Faust's app, its consumer thread) gets this many "
        "seconds, then the process exits 0 anyway with an error naming what it waited for.",
    )
    aggregator_kafka_probe_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between two broker probes (a metadata request); while they "
        "fail, /health reports the executions component `degraded`, `kafka: unreachable`.",
    )
    aggregator_db_pool_size: int = Field(default=4, ge=2)

    @model_validator(mode="after")
    def _retention_exceeds_lateness(self) -> AggregatorSettings:
        if 0 < self.aggregator_raw_retention_days * 24 <= self.aggregator_lateness_hours:
            raise ValueError(
                "aggregator_raw_retention_days must exceed aggregator_lateness_hours "
                "(raw executions are the duplicate filter within the lateness horizon)"
            )
        return self

    @property
    def executions_topic(self) -> str:
        return EXECUTIONS.full_name(self.topic_prefix)

    @property
    def exposures_topic(self) -> str:
        return EXPOSURES.full_name(self.topic_prefix)

    @property
    def executions_group(self) -> str:
        """Consumer group of the executions consumer (offsets live in PostgreSQL)."""
        return f"{self.aggregator_group_id}.executions"

    @property
    def faust_app_id(self) -> str:
        """Faust app id = consumer group of the exposures agent."""
        return f"{self.aggregator_group_id}.exposures"
