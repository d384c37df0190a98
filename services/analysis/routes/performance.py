"""``/api/v1/performance``: summary, trends, period over period, compare, dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from services.analysis import performance
from services.analysis.comparisons import (
    MAX_INT4,
    VersionComparisonRequest,
    VersionComparisonResult,
    compare_versions,
    get_comparison,
)
from services.analysis.performance import (
    DashboardSummary,
    MetricPeriodComparison,
    SchemaSummary,
    SchemaTrends,
)
from services.analysis.periods import Granularity, parse_variant, resolve_window
from services.analysis.routes.deps import (
    ERROR_RESPONSES,
    CompareCacheDep,
    DbDep,
    ErrorBody,
    SettingsDep,
    json_response,
)
from shared.auth import Scope, auth_responses, require
from shared.errors import ValidationFailed

router = APIRouter(
    prefix="/api/v1/performance",
    tags=["performance"],
    # every route, POST /compare included (a query whose result is kept), needs read
    dependencies=[require(Scope.READ)],
    responses={**ERROR_RESPONSES, **auth_responses(ErrorBody)},
)

PeriodDays = Annotated[
    int, Query(ge=1, le=3660, description="Trailing period in days, ending with the current hour.")
]
Start = Annotated[
    datetime | None,
    Query(
        description="Explicit period start (ISO 8601; with end; naive = UTC; floored to the hour)."
    ),
]
End = Annotated[
    datetime | None,
    Query(description="Explicit period end, exclusive (ceiled to the hour)."),
]
Version = Annotated[int | None, Query(ge=1, le=MAX_INT4, description="Only this version.")]
Variant = Annotated[
    str | None,
    Query(description="'all' (default), 'base' (the base version's own rows) or a variant id."),
]

DEFAULT_PERIODS = {Granularity.DAY: 30, Granularity.WEEK: 12}


@router.get(
    "/schemas/{schema_id}/summary",
    response_model=SchemaSummary,
    summary="Executions, success rate, mean and P50/P95/P99 time, mean risk per version and variant",
)
async def schema_summary(
    schema_id: UUID,
    db: DbDep,
    settings: SettingsDep,
    period_days: PeriodDays = 30,
    start: Start = None,
    end: End = None,
) -> SchemaSummary:
    window = resolve_window(period_days, start, end, settings.analysis_max_period_days)
    return await performance.schema_summary(db, schema_id, window)


@router.get(
    "/schemas/{schema_id}/trends",
    response_model=SchemaTrends,
    summary="Daily or weekly buckets over a window (empty buckets included)",
)
async def schema_trends(
    schema_id: UUID,
    db: DbDep,
    settings: SettingsDep,
    granularity: Granularity = Granularity.DAY,
    periods: Annotated[
        int | None,
        Query(ge=1, le=3660, description="Number of buckets (default 30 days / 12 weeks)."),
    ] = None,
    version: Version = None,
    variant: Variant = None,
) -> SchemaTrends:
    count = periods or DEFAULT_PERIODS[granularity]
    if count * granularity.step.days > settings.analysis_max_period_days + 7:
        raise ValidationFailed(
            f"the window may span at most {settings.analysis_max_period_days} days",
            code="invalid_period",
            field="periods",
        )
    return await performance.schema_trends(
        db, schema_id, granularity, count, version, parse_variant(variant)
    )


@router.get(
    "/schemas/{schema_id}/metrics/{metric}",
    response_model=MetricPeriodComparison,
    summary="One metric, this period against the previous one, with significance",
)
async def metric_comparison(
    schema_id: UUID,
    metric: str,
    db: DbDep,
    settings: SettingsDep,
    period_days: PeriodDays = 7,
    start: Start = None,
    end: End = None,
    version: Version = None,
    variant: Variant = None,
    confidence_level: Annotated[float, Query(ge=0.5, le=0.9999)] = 0.95,
) -> MetricPeriodComparison:
    window = resolve_window(period_days, start, end, settings.analysis_max_period_days)
    return await performance.metric_period_comparison(
        db, schema_id, metric, window, version, parse_variant(variant), confidence_level
    )


@router.post(
    "/compare",
    response_model=VersionComparisonResult,
    summary="Compare two versions/variants with statistics (stored in version_comparisons)",
)
async def compare(
    body: VersionComparisonRequest,
    db: DbDep,
    settings: SettingsDep,
    cache: CompareCacheDep,
    cache_control: Annotated[str | None, Header()] = None,
) -> Response:
    bypass = cache_control is not None and "no-cache" in cache_control.lower()
    result = await compare_versions(
        db,
        body,
        None if bypass else cache,
        max_period_days=settings.analysis_max_period_days,
    )
    return json_response(result)


@router.get(
    "/comparisons/{comparison_id}",
    response_model=VersionComparisonResult,
    summary="A stored comparison",
)
async def comparison(comparison_id: UUID, db: DbDep) -> VersionComparisonResult:
    return await get_comparison(db, comparison_id)


@router.get(
    "/dashboard/summary",
    response_model=DashboardSummary,
    summary="Counts of schemas, variants and experiments; recent performance; top schemas",
)
async def dashboard(
    db: DbDep,
    settings: SettingsDep,
    period_days: PeriodDays = 7,
) -> DashboardSummary:
    window = resolve_window(period_days, None, None, settings.analysis_max_period_days)
    return await performance.dashboard_summary(db, window)
