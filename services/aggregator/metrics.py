"""Prometheus metrics of the aggregator (one registry per worker, served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["AggregatorMetrics"]

PREFIX = "abflow_aggregator"


class AggregatorMetrics:
    """Every metric the worker exports. Names start with ``abflow_aggregator_``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events = Counter(
            f"{PREFIX}_events_total",
            "Records of the executions/exposures topics by outcome: counted (a distinct valid "
            "execution/exposure applied), duplicate (an execution id already counted), "
            "dead_letter, replay_skipped (below the offset committed in PostgreSQL)",
            ["topic", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters_total",
            "Records sent to the dead-letter topic, by reason code",
            ["topic", "reason"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag",
            "Records between the committed position (PostgreSQL) and the partition high-water mark",
            ["topic", "partition"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            f"{PREFIX}_assigned_partitions",
            "Executions partitions owned by this worker",
            registry=r,
        )
        self.pending_records = Gauge(
            f"{PREFIX}_pending_records", "Records read but not yet flushed", registry=r
        )
        self.sink_seconds = Histogram(
            f"{PREFIX}_sink_seconds",
            "Duration of one flush transaction to PostgreSQL",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.sink_phase_seconds = Counter(
            f"{PREFIX}_sink_phase_seconds_total",
            "Seconds spent in each phase of the executions flush transaction (lock, dedupe, raw, "
            "aggregate, load, merge, encode, upsert, progress, commit)",
            ["phase"],
            registry=r,
        )
        self.rows_written = Counter(
            f"{PREFIX}_rows_written_total",
            "Rows inserted or upserted in PostgreSQL, by table",
            ["table"],
            registry=r,
        )
        self.flushes = Counter(
            f"{PREFIX}_flushes_total",
            "Flush transactions by result: ok, stale (another worker committed the partition "
            "first; state reloaded), error (rolled back; partitions re-read from PostgreSQL)",
            ["kind", "result"],
            registry=r,
        )
        self.freshness = Histogram(
            f"{PREFIX}_freshness_seconds",
            "Time from the Kafka record timestamp to the commit that made it visible in PostgreSQL",
            buckets=(0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0),
            registry=r,
        )
        self.watermark = Gauge(
            f"{PREFIX}_watermark_seconds",
            "Event-time watermark (largest completed_at applied) per partition, as epoch seconds",
            ["partition"],
            registry=r,
        )
        self.cached_rows = Gauge(
            f"{PREFIX}_cached_rows", "Hourly partial aggregates held in memory", registry=r
        )
