"""Prometheus metrics of the serving half (request latency comes from
:class:`shared.http.MetricsMiddleware`)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ServingMetrics"]


class ServingMetrics:
    """The serving metrics, registered in one registry (one set per component)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.assignments = Counter(
            "assignment_assignments_total",
            "Assignments served, by schema, experiment, variant and reason "
            "(variant '__base__' is the base version; experiment '' is none).",
            ["schema", "experiment", "variant", "reason"],
            registry=registry,
        )
        self.exposures_buffered = Gauge(
            "assignment_exposure_buffer_depth",
            "Exposure events waiting in the bounded buffer.",
            registry=registry,
        )
        self.exposure_buffer_capacity = Gauge(
            "assignment_exposure_buffer_capacity",
            "Capacity of the exposure buffer.",
            registry=registry,
        )
        self.exposures_dropped = Counter(
            "assignment_exposures_dropped_total",
            "Exposure events dropped: buffer_full (never blocks a request) or send_failed.",
            ["reason"],
            registry=registry,
        )
        self.exposures_sent = Counter(
            "assignment_exposures_sent_total",
            "Exposure events acknowledged by Kafka.",
            registry=registry,
        )
        self.exposures_deduplicated = Counter(
            "assignment_exposures_deduplicated_total",
            "Exposures skipped because this replica emitted the same one recently.",
            registry=registry,
        )
        self.snapshot_schemas = Gauge(
            "assignment_snapshot_schemas",
            "Schemas in the in-memory snapshot.",
            registry=registry,
        )
        self.snapshot_revision = Gauge(
            "assignment_snapshot_revision",
            "Config revision served, per schema.",
            ["schema"],
            registry=registry,
        )
        self.snapshot_offset = Gauge(
            "assignment_snapshot_offset",
            "Next offset of the config topic to apply (summed over partitions).",
            registry=registry,
        )
        self.snapshot_age = Gauge(
            "assignment_snapshot_age_seconds",
            "Seconds since the snapshot was last confirmed caught up with the config topic.",
            registry=registry,
        )
        self.config_records = Counter(
            "assignment_config_records_total",
            "Config topic records by outcome (applied, stale, removed, invalid).",
            ["outcome"],
            registry=registry,
        )
        self.kafka_connected = Gauge(
            "assignment_config_kafka_connected",
            "1 while the config follower reaches Kafka, else 0.",
            registry=registry,
        )

    def bind(
        self,
        buffer_depth: Callable[[], float],
        buffer_capacity: float,
        snapshot_age: Callable[[], float],
        schemas: Callable[[], float],
    ) -> None:
        """Compute the gauges that describe live state at scrape time."""
        self.exposures_buffered.set_function(buffer_depth)
        self.exposure_buffer_capacity.set(buffer_capacity)
        self.snapshot_age.set_function(snapshot_age)
        self.snapshot_schemas.set_function(schemas)
