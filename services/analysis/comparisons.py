"""Statistical comparison of two versions/variants of one schema (``POST /compare``).

The seed's ``VersionComparisonRequest``: a baseline and a comparison arm (a version, and
optionally one variant of it; without a variant the arm is the base version's rows,
``variant_id IS NULL``), a trailing period in days and the metrics. Each metric is
compared with the engine (Welch for execution time and risk score, the pooled
two-proportion z-test for success rate), the first metric (or ``primary_metric``) drives
the recommendation, and the comparison is stored in ``version_comparisons``.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime
from typing import Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.analysis import repository as repo
from services.analysis.cache import TTLCache
from services.analysis.performance import SchemaNotFound, VariantNotFound, VersionNotFound
from services.analysis.periods import PeriodModel, Window, trailing_window
from shared.errors import ConflictError, NotFoundError, ValidationFailed
from shared.results import METRICS, ArmAggregate, MetricResult, Queryable, ResultModel
from shared.stats import DEFAULT_MIN_SAMPLE_SIZE, compare_metric, recommend

__all__ = [
    "ComparisonArm",
    "ComparisonNotFound",
    "VersionComparisonRequest",
    "VersionComparisonResult",
    "compare_versions",
    "get_comparison",
]

MAX_INT4 = 2_147_483_647
MetricName = Literal["success_rate", "execution_time", "risk_score"]


class ComparisonNotFound(NotFoundError):
    code = "comparison_not_found"


class ComparisonUnreadable(ConflictError):
    code = "comparison_unreadable"


class VersionComparisonRequest(BaseModel):
    """Request of ``POST /api/v1/performance/compare`` (the seed's fields plus options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_id: UUID
    baseline_version: int = Field(ge=1, le=MAX_INT4)
    comparison_version: int = Field(ge=1, le=MAX_INT4)
    baseline_variant_id: UUID | None = None
    comparison_variant_id: UUID | None = None
    period_days: int = Field(default=30, ge=1, le=3660)
    metrics: list[MetricName] = Field(default_factory=lambda: list(METRICS), min_length=1)  # type: ignore[arg-type]
    primary_metric: MetricName | None = Field(
        default=None, description="Metric that drives the recommendation (default: metrics[0])."
    )
    confidence_level: float = Field(default=0.95, ge=0.5, le=0.9999)
    min_sample_size: int = Field(default=DEFAULT_MIN_SAMPLE_SIZE, ge=2, le=1_000_000_000)
    compared_by: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.primary_metric is not None and self.primary_metric not in self.metrics:
            raise ValueError("primary_metric must be one of metrics")
        if (self.baseline_version, self.baseline_variant_id) == (
            self.comparison_version,
            self.comparison_variant_id,
        ):
            raise ValueError("baseline and comparison are the same version and variant")
        return self

    @property
    def metric_list(self) -> list[str]:
        return list(dict.fromkeys(self.metrics))

    @property
    def primary(self) -> str:
        return self.primary_metric or self.metrics[0]


class ComparisonArm(ResultModel):
    version: int
    variant_id: UUID | None
    variant_key: str | None
    executions: int | None = None


class VersionComparisonResult(ResultModel):
    """A stored comparison. Per metric: the estimate (``difference``, comparison −
    baseline) with its CI, p-value, effect size and significance; ``primary_result`` is
    the primary metric's, and ``recommendation`` follows from it (``needs_more_data``
    while an arm has fewer than ``min_sample_size`` observations of that metric)."""

    comparison_id: UUID
    schema_id: UUID
    baseline: ComparisonArm
    comparison: ComparisonArm
    period: PeriodModel
    metrics: list[str]
    primary_metric: str
    results: dict[str, MetricResult]
    primary_result: MetricResult
    is_significant: bool
    recommendation: str
    confidence_level: float
    min_sample_size: int | None
    compared_by: str | None
    created_at: datetime
    cached: bool = False


async def _validate_arms(db: Queryable, req: VersionComparisonRequest) -> dict[UUID, str]:
    """404/422 checks in one query; returns variant keys by id."""
    arms = [
        ("baseline_variant_id", req.baseline_variant_id, req.baseline_version),
        ("comparison_variant_id", req.comparison_variant_id, req.comparison_version),
    ]
    wanted = sorted({req.baseline_version, req.comparison_version})
    found = await repo.compare_targets(
        db, req.schema_id, wanted, [v for _, v, _ in arms if v is not None]
    )
    if not found.schema_exists:
        raise SchemaNotFound(f"schema {req.schema_id} does not exist", schema_id=str(req.schema_id))
    missing = set(wanted) - found.versions
    if missing:
        raise VersionNotFound(
            f"schema {req.schema_id} has no version {min(missing)}",
            schema_id=str(req.schema_id),
            version=min(missing),
        )
    keys: dict[UUID, str] = {}
    for field, vid, version in arms:
        if vid is None:
            continue
        row = found.variants.get(vid)
        if row is None:
            raise VariantNotFound(f"variant {vid} does not exist", variant_id=str(vid), field=field)
        schema_id, base_version, key = row
        if schema_id != req.schema_id:
            raise ValidationFailed(
                f"variant {vid} belongs to another schema",
                code="variant_schema_mismatch",
                field=field,
            )
        if base_version != version:
            raise ValidationFailed(
                f"variant {vid} is based on version {base_version}, not {version}",
                code="variant_version_mismatch",
                field=field,
            )
        keys[vid] = key
    return keys


def _cache_key(
    req: VersionComparisonRequest, window: Window, base: ArmAggregate, comp: ArmAggregate
) -> Hashable:
    return (
        req.schema_id, req.baseline_version, req.baseline_variant_id, req.comparison_version,
        req.comparison_variant_id, tuple(req.metric_list), req.primary, req.confidence_level,
        req.min_sample_size, window.start, window.end, base.fingerprint(), comp.fingerprint(),
    )  # fmt: skip


async def compare_versions(
    db: Queryable,
    req: VersionComparisonRequest,
    cache: TTLCache[VersionComparisonResult] | None = None,
    *,
    max_period_days: int = 366,
    now: datetime | None = None,
) -> VersionComparisonResult:
    if req.period_days > max_period_days:
        raise ValidationFailed(
            f"period_days may be at most {max_period_days}",
            code="invalid_period",
            field="period_days",
        )
    keys = await _validate_arms(db, req)
    window = trailing_window(req.period_days, now)
    baseline = repo.ArmSpec(req.baseline_version, req.baseline_variant_id)
    comparison = repo.ArmSpec(req.comparison_version, req.comparison_variant_id)
    base_agg, comp_agg = await repo.compare_aggregates(
        db, req.schema_id, window, baseline, comparison
    )
    key = _cache_key(req, window, base_agg, comp_agg)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit.model_copy(update={"cached": True})

    results = {
        m: MetricResult.of(
            compare_metric(m, base_agg.stats(m), comp_agg.stats(m), req.confidence_level)
        )
        for m in req.metric_list
    }
    primary = results[req.primary]
    recommendation = recommend(
        (primary.baseline.n, primary.comparison.n),
        primary.is_significant,
        primary.direction_good,
        req.min_sample_size,
    ).value
    stored = await repo.insert_comparison(
        db,
        {
            "schema_id": req.schema_id,
            "baseline_version": req.baseline_version,
            "comparison_version": req.comparison_version,
            "baseline_variant_id": req.baseline_variant_id,
            "comparison_variant_id": req.comparison_variant_id,
            "period_start": window.start,
            "period_end": window.end,
            "primary_metric": req.primary,
            "metrics": req.metric_list,
            "results": {m: r.model_dump(mode="json") for m, r in results.items()},
            "primary_p_value": primary.p_value_adjusted,
            "primary_effect_size": primary.effect_size,
            "ci_low": primary.ci_low,
            "ci_high": primary.ci_high,
            "is_significant": primary.is_significant,
            "recommendation": recommendation,
            "compared_by": req.compared_by,
        },
    )
    result = VersionComparisonResult(
        comparison_id=stored["id"],
        schema_id=req.schema_id,
        baseline=ComparisonArm(
            version=req.baseline_version,
            variant_id=req.baseline_variant_id,
            variant_key=keys.get(req.baseline_variant_id) if req.baseline_variant_id else None,
            executions=base_agg.total_executions,
        ),
        comparison=ComparisonArm(
            version=req.comparison_version,
            variant_id=req.comparison_variant_id,
            variant_key=keys.get(req.comparison_variant_id) if req.comparison_variant_id else None,
            executions=comp_agg.total_executions,
        ),
        period=window.model(),
        metrics=req.metric_list,
        primary_metric=req.primary,
        results=results,
        primary_result=primary,
        is_significant=primary.is_significant,
        recommendation=recommendation,
        confidence_level=req.confidence_level,
        min_sample_size=req.min_sample_size,
        compared_by=req.compared_by,
        created_at=stored["created_at"],
    )
    if cache is not None:
        cache.put(key, result)
    return result


async def get_comparison(db: Queryable, comparison_id: UUID) -> VersionComparisonResult:
    row = await repo.comparison_by_id(db, comparison_id)
    if row is None:
        raise ComparisonNotFound(
            f"comparison {comparison_id} does not exist", comparison_id=str(comparison_id)
        )
    try:
        results = {m: MetricResult.model_validate(r) for m, r in (row["results"] or {}).items()}
        primary = results[row["primary_metric"]]
    except (KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise ComparisonUnreadable(
            f"comparison {comparison_id} is stored in a form this service cannot read",
            comparison_id=str(comparison_id),
        ) from exc
    success = results.get("success_rate")
    return VersionComparisonResult(
        comparison_id=row["id"],
        schema_id=row["schema_id"],
        baseline=ComparisonArm(
            version=row["baseline_version"],
            variant_id=row["baseline_variant_id"],
            variant_key=row["baseline_variant_key"],
            executions=success.baseline.n if success else None,
        ),
        comparison=ComparisonArm(
            version=row["comparison_version"],
            variant_id=row["comparison_variant_id"],
            variant_key=row["comparison_variant_key"],
            executions=success.comparison.n if success else None,
        ),
        period=Window(row["period_start"], row["period_end"]).model(),
        metrics=list(row["metrics"]),
        primary_metric=row["primary_metric"],
        results=results,
        primary_result=primary,
        is_significant=row["is_significant"],
        recommendation=row["recommendation"],
        confidence_level=primary.confidence_level,
        min_sample_size=None,
        compared_by=row["compared_by"],
        created_at=row["created_at"],
    )
