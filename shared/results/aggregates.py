"""Sums of the hourly metric rows and their conversion to sufficient statistics.

Both metric tables (``version_performance_metrics`` and ``experiment_variant_metrics``)
hold ADDITIVE statistics per (entity, UTC hour, source partition). Readers add them up
in PostgreSQL with :data:`SUM_COLUMNS` over the hourly rows only (``period_type =
'hour'``), so the cost of a query depends on the number of hours × partitions, never on
the number of executions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.stats import MeanStats, MetricStats, ProportionStats

__all__ = [
    "METRICS",
    "STAT_SUM_COLUMNS",
    "SUM_COLUMNS",
    "ArmAggregate",
    "Queryable",
]

METRICS: tuple[str, ...] = ("success_rate", "execution_time", "risk_score")
"""The platform's metrics, in display order."""

STAT_SUM_COLUMNS = """
    coalesce(sum(m.total_executions), 0)::bigint       AS total_executions,
    coalesce(sum(m.successful_executions), 0)::bigint  AS successful_executions,
    coalesce(sum(m.duration_count), 0)::bigint         AS duration_count,
    coalesce(sum(m.duration_sum), 0)::float8           AS duration_sum,
    coalesce(sum(m.duration_sum_sq), 0)::float8        AS duration_sum_sq,
    coalesce(sum(m.risk_count), 0)::bigint             AS risk_count,
    coalesce(sum(m.risk_sum), 0)::float8               AS risk_sum,
    coalesce(sum(m.risk_sum_sq), 0)::float8            AS risk_sum_sq,
    count(m.id)::bigint                                AS row_count,
    max(m.period_start)                                AS last_period_start
"""
"""Only what the statistics need (failed = total − successful), plus the number of rows and
the latest hour: the hot paths use this. (``max(updated_at)``, the last column of the row,
would cost about a fifth more: every column of every row would have to be decoded.)"""

SUM_COLUMNS = """
    coalesce(sum(m.total_executions), 0)::bigint       AS total_executions,
    coalesce(sum(m.successful_executions), 0)::bigint  AS successful_executions,
    coalesce(sum(m.failed_executions), 0)::bigint      AS failed_executions,
    coalesce(sum(m.duration_count), 0)::bigint         AS duration_count,
    coalesce(sum(m.duration_sum), 0)::float8           AS duration_sum,
    coalesce(sum(m.duration_sum_sq), 0)::float8        AS duration_sum_sq,
    min(m.duration_min)                                AS duration_min,
    max(m.duration_max)                                AS duration_max,
    coalesce(sum(m.risk_count), 0)::bigint             AS risk_count,
    coalesce(sum(m.risk_sum), 0)::float8               AS risk_sum,
    coalesce(sum(m.risk_sum_sq), 0)::float8            AS risk_sum_sq,
    count(m.id)::bigint                                AS row_count,
    max(m.updated_at)                                  AS last_updated_at,
    min(m.period_start)                                AS first_period_start,
    max(m.period_start)                                AS last_period_start
"""
"""Select list summing the metric rows aliased ``m`` (use with GROUP BY), with min/max and
the first and last hour."""


class Queryable(Protocol):
    """An asyncpg ``Connection`` or ``Pool`` (anything with ``fetch``/``fetchrow``)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class ArmAggregate:
    """The summed statistics of one arm (or version/variant) over a period."""

    total_executions: int = 0
    successful_executions: int = 0
    failed_executions: int = 0
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_sum_sq: float = 0.0
    duration_min: float | None = None
    duration_max: float | None = None
    risk_count: int = 0
    risk_sum: float = 0.0
    risk_sum_sq: float = 0.0
    row_count: int = 0
    last_updated_at: datetime | None = None
    first_period_start: datetime | None = None
    last_period_start: datetime | None = None

    @classmethod
    def from_record(cls, row: Any) -> ArmAggregate:
        """Build from a record carrying the :data:`SUM_COLUMNS` names (missing → empty)."""

        def get(name: str, default: Any) -> Any:
            try:
                value = row[name]
            except KeyError:
                return default
            return default if value is None else value

        total = int(get("total_executions", 0))
        successes = int(get("successful_executions", 0))
        return cls(
            total_executions=total,
            successful_executions=successes,
            failed_executions=int(get("failed_executions", total - successes)),
            duration_count=int(get("duration_count", 0)),
            duration_sum=float(get("duration_sum", 0.0)),
            duration_sum_sq=float(get("duration_sum_sq", 0.0)),
            duration_min=get("duration_min", None),
            duration_max=get("duration_max", None),
            risk_count=int(get("risk_count", 0)),
            risk_sum=float(get("risk_sum", 0.0)),
            risk_sum_sq=float(get("risk_sum_sq", 0.0)),
            row_count=int(get("row_count", 0)),
            last_updated_at=get("last_updated_at", None),
            first_period_start=get("first_period_start", None),
            last_period_start=get("last_period_start", None),
        )

    @property
    def success(self) -> ProportionStats:
        return ProportionStats(self.successful_executions, self.total_executions)

    @property
    def duration(self) -> MeanStats:
        return MeanStats(self.duration_count, self.duration_sum, self.duration_sum_sq)

    @property
    def risk(self) -> MeanStats:
        return MeanStats(self.risk_count, self.risk_sum, self.risk_sum_sq)

    def stats(self, metric: str) -> MetricStats:
        """Sufficient statistics of ``metric`` (one of :data:`METRICS`)."""
        if metric == "success_rate":
            return self.success
        if metric == "execution_time":
            return self.duration
        if metric == "risk_score":
            return self.risk
        raise KeyError(metric)

    def metric_stats(
        self, metrics: tuple[str, ...] | list[str] = METRICS
    ) -> dict[str, MetricStats]:
        return {m: self.stats(m) for m in metrics}

    def fingerprint(self) -> tuple[Any, ...]:
        """Every summed value: equal fingerprints ⇒ equal statistics (cache keys)."""
        return (
            self.total_executions, self.successful_executions, self.failed_executions,
            self.duration_count, self.duration_sum, self.duration_sum_sq,
            self.risk_count, self.risk_sum, self.risk_sum_sq, self.row_count,
            self.last_updated_at,
        )  # fmt: skip
