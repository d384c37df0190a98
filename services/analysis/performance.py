"""Performance of schemas, versions and variants: summary, trends, period over period,
and the dashboard summary (``/api/v1/performance``).

Means, rates and standard deviations come from the summed sufficient statistics;
P50/P95/P99 from the merged hourly DDSketches (1% relative accuracy).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from services.analysis import repository as repo
from services.analysis.periods import (
    BASE,
    Granularity,
    PeriodModel,
    VariantFilter,
    Window,
    bucket_starts,
)
from shared.errors import NotFoundError, ValidationFailed
from shared.results import (
    ArmAggregate,
    ArmSummaryModel,
    Finite,
    MergedSketch,
    MetricResult,
    Queryable,
    ResultModel,
    SketchFormatError,
)
from shared.results.sketch import merge
from shared.stats import DEFAULT_METRICS, compare_metric

__all__ = [
    "DashboardSummary",
    "MetricPeriodComparison",
    "PerformanceStats",
    "SchemaSummary",
    "SchemaTrends",
    "TrendBucket",
    "VersionVariantPerformance",
    "dashboard_summary",
    "metric_period_comparison",
    "require_schema",
    "require_variant_filter",
    "schema_summary",
    "schema_trends",
]

QUANTILES = (0.5, 0.95, 0.99)


class SchemaNotFound(NotFoundError):
    code = "schema_not_found"


class VariantNotFound(NotFoundError):
    code = "variant_not_found"


class VersionNotFound(NotFoundError):
    code = "version_not_found"


class PerformanceStats(ResultModel):
    """Execution metrics of a set of hourly rows.

    ``percentile_coverage`` = executions covered by stored sketches / executions with a
    duration (1.0 when every hourly row carried its sketch; None without durations).
    """

    executions: int
    successful_executions: int
    failed_executions: int
    success_rate: Finite = None
    avg_execution_time_ms: Finite = None
    stddev_execution_time_ms: Finite = None
    min_execution_time_ms: Finite = None
    max_execution_time_ms: Finite = None
    p50_execution_time_ms: Finite = None
    p95_execution_time_ms: Finite = None
    p99_execution_time_ms: Finite = None
    percentile_coverage: Finite = None
    avg_risk_score: Finite = None
    stddev_risk_score: Finite = None
    risk_scored_executions: int = 0
    first_period_start: datetime | None = None
    last_period_start: datetime | None = None

    @classmethod
    def fields_of(cls, agg: ArmAggregate, sketch: MergedSketch | None = None) -> dict[str, object]:
        p50 = p95 = p99 = coverage = None
        if sketch is not None:
            p50, p95, p99 = sketch.quantiles(QUANTILES)
            if agg.duration_count > 0:
                coverage = min(1.0, sketch.count / agg.duration_count)
        return {
            "executions": agg.total_executions,
            "successful_executions": agg.successful_executions,
            "failed_executions": agg.failed_executions,
            "success_rate": agg.success.mean,
            "avg_execution_time_ms": agg.duration.mean,
            "stddev_execution_time_ms": agg.duration.sd,
            "min_execution_time_ms": agg.duration_min,
            "max_execution_time_ms": agg.duration_max,
            "p50_execution_time_ms": p50,
            "p95_execution_time_ms": p95,
            "p99_execution_time_ms": p99,
            "percentile_coverage": coverage,
            "avg_risk_score": agg.risk.mean,
            "stddev_risk_score": agg.risk.sd,
            "risk_scored_executions": agg.risk_count,
            "first_period_start": agg.first_period_start,
            "last_period_start": agg.last_period_start,
        }

    @classmethod
    def of(cls, agg: ArmAggregate, sketch: MergedSketch | None = None) -> PerformanceStats:
        return cls.model_validate(cls.fields_of(agg, sketch))


class VersionVariantPerformance(PerformanceStats):
    """One version (``variant_id`` None = the base version) or one variant of it."""

    schema_version: int
    variant_id: UUID | None
    variant_key: str | None
    is_base_version: bool


class SchemaSummary(ResultModel):
    schema_id: UUID
    schema_key: str
    schema_name: str
    status: str
    current_version: int | None
    period: PeriodModel
    totals: PerformanceStats
    versions: list[VersionVariantPerformance]


class TrendBucket(PerformanceStats):
    bucket_start: datetime
    bucket_end: datetime


class SchemaTrends(ResultModel):
    schema_id: UUID
    granularity: str
    periods: int
    period: PeriodModel
    version: int | None
    variant: str
    buckets: list[TrendBucket]


class MetricPeriodComparison(ResultModel):
    """This period against the previous one of the same length (previous = baseline)."""

    schema_id: UUID
    metric: str
    version: int | None
    variant: str
    current_period: PeriodModel
    previous_period: PeriodModel
    current: ArmSummaryModel
    previous: ArmSummaryModel
    change: Finite = None
    relative_change: Finite = None
    trend: Literal["improving", "degrading", "no_significant_change", "insufficient_data"]
    comparison: MetricResult


class SchemaActivity(ResultModel):
    schema_id: UUID
    schema_key: str
    schema_name: str
    executions: int
    success_rate: Finite = None
    avg_execution_time_ms: Finite = None
    avg_risk_score: Finite = None


class RunningExperiment(ResultModel):
    experiment_id: UUID
    experiment_key: str
    experiment_name: str
    schema_id: UUID
    schema_key: str
    primary_metric: str
    started_at: datetime | None
    total_executions: int
    progress_percent: Finite = None


class ComparisonBrief(ResultModel):
    comparison_id: UUID
    schema_id: UUID
    schema_key: str
    baseline_version: int
    comparison_version: int
    baseline_variant_id: UUID | None
    comparison_variant_id: UUID | None
    primary_metric: str
    primary_p_value: Finite = None
    is_significant: bool
    recommendation: str
    created_at: datetime


class EntityCounts(ResultModel):
    total: int
    by_status: dict[str, int]


class DashboardSummary(ResultModel):
    generated_at: datetime
    period: PeriodModel
    schemas: EntityCounts
    variants: EntityCounts
    experiments: EntityCounts
    performance: PerformanceStats
    top_schemas: list[SchemaActivity]
    running_experiments: list[RunningExperiment]
    recent_comparisons: list[ComparisonBrief]


# ----------------------------------------------------------------------------- helpers


def _merge(blobs: list[bytes]) -> MergedSketch | None:
    """Merged sketch, or None when a stored blob cannot be read (logged by caller's 200)."""
    try:
        return merge(blobs)
    except SketchFormatError:
        return None


async def require_schema(db: Queryable, schema_id: UUID) -> object:
    row = await repo.schema_row(db, schema_id)
    if row is None:
        raise SchemaNotFound(f"schema {schema_id} does not exist", schema_id=str(schema_id))
    return row


async def require_variant_filter(
    db: Queryable, schema_id: UUID, version: int | None, variant: VariantFilter
) -> None:
    """404 for an unknown version or variant of the schema; 422 for a variant of another
    schema or of another version than ``version``."""
    if version is not None and not await repo.version_numbers(db, schema_id, [version]):
        raise VersionNotFound(
            f"schema {schema_id} has no version {version}",
            schema_id=str(schema_id),
            version=version,
        )
    if isinstance(variant, UUID):
        rows = await repo.variant_rows(db, [variant])
        row = rows.get(variant)
        if row is None:
            raise VariantNotFound(f"variant {variant} does not exist", variant_id=str(variant))
        if row["schema_id"] != schema_id:
            raise ValidationFailed(
                f"variant {variant} belongs to another schema",
                code="variant_schema_mismatch",
                field="variant",
            )
        if version is not None and row["base_version"] != version:
            raise ValidationFailed(
                f"variant {variant} is based on version {row['base_version']}, not {version}",
                code="variant_version_mismatch",
                field="variant",
            )


def variant_label(variant: VariantFilter) -> str:
    if variant is None:
        return "all"
    return "base" if variant is BASE else str(variant)


# ----------------------------------------------------------------------------- endpoints


async def schema_summary(db: Queryable, schema_id: UUID, window: Window) -> SchemaSummary:
    schema = await repo.schema_row(db, schema_id)
    if schema is None:
        raise SchemaNotFound(f"schema {schema_id} does not exist", schema_id=str(schema_id))
    groups = await repo.summary_aggregates(db, schema_id, window)
    versions: list[VersionVariantPerformance] = []
    total = ArmAggregate()
    all_blobs: list[bytes] = []
    for g in groups:
        version, variant_id = g.key
        versions.append(
            VersionVariantPerformance.model_validate(
                {
                    **PerformanceStats.fields_of(g.aggregate, _merge(g.sketches)),
                    "schema_version": version,
                    "variant_id": variant_id,
                    "variant_key": g.label,
                    "is_base_version": variant_id is None,
                }
            )
        )
        total = _add(total, g.aggregate)
        all_blobs.extend(g.sketches)
    return SchemaSummary(
        schema_id=schema["id"],
        schema_key=schema["key"],
        schema_name=schema["name"],
        status=schema["status"],
        current_version=schema["current_version"],
        period=window.model(),
        totals=PerformanceStats.of(total, _merge(all_blobs)),
        versions=versions,
    )


def _add(a: ArmAggregate, b: ArmAggregate) -> ArmAggregate:
    def lo(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else min(x, y)

    def hi(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else max(x, y)

    def later(x: datetime | None, y: datetime | None) -> datetime | None:
        return y if x is None else x if y is None else max(x, y)

    def earlier(x: datetime | None, y: datetime | None) -> datetime | None:
        return y if x is None else x if y is None else min(x, y)

    return ArmAggregate(
        total_executions=a.total_executions + b.total_executions,
        successful_executions=a.successful_executions + b.successful_executions,
        failed_executions=a.failed_executions + b.failed_executions,
        duration_count=a.duration_count + b.duration_count,
        duration_sum=a.duration_sum + b.duration_sum,
        duration_sum_sq=a.duration_sum_sq + b.duration_sum_sq,
        duration_min=lo(a.duration_min, b.duration_min),
        duration_max=hi(a.duration_max, b.duration_max),
        risk_count=a.risk_count + b.risk_count,
        risk_sum=a.risk_sum + b.risk_sum,
        risk_sum_sq=a.risk_sum_sq + b.risk_sum_sq,
        row_count=a.row_count + b.row_count,
        last_updated_at=later(a.last_updated_at, b.last_updated_at),
        first_period_start=earlier(a.first_period_start, b.first_period_start),
        last_period_start=later(a.last_period_start, b.last_period_start),
    )


async def schema_trends(
    db: Queryable,
    schema_id: UUID,
    granularity: Granularity,
    periods: int,
    version: int | None,
    variant: VariantFilter,
    now: datetime | None = None,
) -> SchemaTrends:
    await require_schema(db, schema_id)
    await require_variant_filter(db, schema_id, version, variant)
    starts = bucket_starts(granularity, periods, now)
    window = Window(starts[0], starts[-1] + granularity.step)
    by_bucket = await repo.trend_aggregates(
        db, schema_id, window, granularity.value, version, variant
    )
    buckets = []
    for start in starts:
        g = by_bucket.get(start)
        agg = g.aggregate if g is not None else ArmAggregate()
        sketch = _merge(g.sketches) if g is not None else None
        buckets.append(
            TrendBucket.model_validate(
                {
                    **PerformanceStats.fields_of(agg, sketch),
                    "bucket_start": start,
                    "bucket_end": start + granularity.step,
                }
            )
        )
    return SchemaTrends(
        schema_id=schema_id,
        granularity=granularity.value,
        periods=periods,
        period=window.model(),
        version=version,
        variant=variant_label(variant),
        buckets=buckets,
    )


async def metric_period_comparison(
    db: Queryable,
    schema_id: UUID,
    metric: str,
    current: Window,
    version: int | None,
    variant: VariantFilter,
    confidence_level: float,
) -> MetricPeriodComparison:
    if metric not in DEFAULT_METRICS:
        raise ValidationFailed(
            f"unknown metric {metric!r}; expected one of {sorted(DEFAULT_METRICS)}",
            code="unknown_metric",
            field="metric",
        )
    await require_schema(db, schema_id)
    await require_variant_filter(db, schema_id, version, variant)
    previous = current.previous()
    before, now_agg = await repo.metric_period_aggregates(
        db, schema_id, current, previous, version, variant
    )
    base, comp = before.stats(metric), now_agg.stats(metric)
    result = MetricResult.of(compare_metric(metric, base, comp, confidence_level))
    if result.error_code in ("insufficient_data", "invalid_input") or result.p_value is None:
        trend: Literal["improving", "degrading", "no_significant_change", "insufficient_data"] = (
            "insufficient_data"
            if result.error_code == "insufficient_data"
            else "no_significant_change"
        )
    elif result.is_significant and result.direction_good is True:
        trend = "improving"
    elif result.is_significant and result.direction_good is False:
        trend = "degrading"
    else:
        trend = "no_significant_change"
    return MetricPeriodComparison(
        schema_id=schema_id,
        metric=metric,
        version=version,
        variant=variant_label(variant),
        current_period=current.model(),
        previous_period=previous.model(),
        current=result.comparison,
        previous=result.baseline,
        change=result.difference,
        relative_change=result.relative_lift,
        trend=trend,
        comparison=result,
    )


async def dashboard_summary(
    db: Queryable, window: Window, top: int = 10, now: datetime | None = None
) -> DashboardSummary:
    counts = await repo.dashboard_counts(db)
    perf = await repo.dashboard_performance(db, window)
    tops = await repo.top_schemas(db, window, top)
    running = await repo.running_experiments(db, 20)
    recent = await repo.recent_comparisons(db, 10)
    variants = repo.json_counts(counts["variants_by_status"])
    experiments = repo.json_counts(counts["experiments_by_status"])
    total_schemas = int(counts["schemas_total"])
    active = int(counts["schemas_active"])
    return DashboardSummary(
        generated_at=now or datetime.now(UTC),
        period=window.model(),
        schemas=EntityCounts(
            total=total_schemas, by_status={"active": active, "archived": total_schemas - active}
        ),
        variants=EntityCounts(total=sum(variants.values()), by_status=variants),
        experiments=EntityCounts(total=sum(experiments.values()), by_status=experiments),
        performance=PerformanceStats.of(perf),
        top_schemas=[
            SchemaActivity(
                schema_id=r["schema_id"],
                schema_key=r["schema_key"],
                schema_name=r["schema_name"],
                executions=int(r["total_executions"]),
                success_rate=ArmAggregate.from_record(r).success.mean,
                avg_execution_time_ms=ArmAggregate.from_record(r).duration.mean,
                avg_risk_score=ArmAggregate.from_record(r).risk.mean,
            )
            for r in tops
        ],
        running_experiments=[
            RunningExperiment(
                experiment_id=r["experiment_id"],
                experiment_key=r["experiment_key"],
                experiment_name=r["experiment_name"],
                schema_id=r["schema_id"],
                schema_key=r["schema_key"],
                primary_metric=r["primary_metric"],
                started_at=r["started_at"],
                total_executions=int(r["total_executions"]),
                progress_percent=r["progress_pct"],
            )
            for r in running
        ],
        recent_comparisons=[
            ComparisonBrief(
                comparison_id=r["id"],
                schema_id=r["schema_id"],
                schema_key=r["schema_key"],
                baseline_version=r["baseline_version"],
                comparison_version=r["comparison_version"],
                baseline_variant_id=r["baseline_variant_id"],
                comparison_variant_id=r["comparison_variant_id"],
                primary_metric=r["primary_metric"],
                primary_p_value=r["primary_p_value"],
                is_significant=r["is_significant"],
                recommendation=r["recommendation"],
                created_at=r["created_at"],
            )
            for r in recent
        ],
    )
