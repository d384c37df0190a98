"""Experiment results for the console: one experiment's status, and dashboard rows.

The analysis itself lives in :mod:`shared.results.experiment` (the control plane uses the
same code on ``complete``); this module pages the experiments and condenses each result
into a dashboard row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from services.analysis import repository as repo
from services.analysis.cache import TTLCache
from shared.results import (
    ExperimentResult,
    ExposureCounts,
    Finite,
    Queryable,
    ResultModel,
    fetch_exposure_counts,
    load_experiment_result,
    load_experiment_results,
)

ExposureCache = TTLCache[dict[UUID, int]]
"""experiment id → exposed units per arm, kept for ``ANALYSIS_EXPOSURE_CACHE_TTL_S``."""

__all__ = [
    "ExperimentStatusRow",
    "ExperimentStatuses",
    "experiment_status",
    "experiment_statuses",
]

ExperimentStatus = Literal["draft", "running", "paused", "completed", "cancelled"]


class VariantBrief(ResultModel):
    variant_id: UUID
    variant_key: str | None
    is_control: bool
    traffic_percentage: float
    sample_size: int
    exposed_units: int
    completion_percent: Finite = None
    primary_value: Finite = None
    is_winner: bool


class Headline(ResultModel):
    """The primary-metric comparison that sums the experiment up (see
    :meth:`ExperimentResult.headline`)."""

    variant_id: UUID
    variant_key: str | None
    metric: str
    difference: Finite = None
    ci_low: Finite = None
    ci_high: Finite = None
    relative_lift: Finite = None
    p_value_adjusted: Finite = None
    is_significant: bool
    direction_good: bool | None
    error_code: str | None = None


class ExperimentStatusRow(ResultModel):
    """One dashboard row: status, progress, per-variant n, headline, SRM flag, winner.

    ``winner_variant_id`` is the recorded winner of a completed experiment when there is
    one (``winner_source = "recorded"``), else the analysis' current winner
    (``"analysis"``), else None.
    """

    experiment_id: UUID
    experiment_key: str
    experiment_name: str
    schema_id: UUID
    status: str
    primary_metric: str
    sequential_testing: bool
    started_at: datetime | None
    ended_at: datetime | None
    total_executions: int
    exposed_units: int
    progress_percent: Finite = None
    required_n_per_arm: int | None
    days_remaining: Finite = None
    projected_completion_at: datetime | None
    variants: list[VariantBrief]
    headline: Headline | None
    srm_mismatch: bool
    srm_p_value: Finite = None
    recommendation: str
    winner_variant_id: UUID | None
    winner_variant_key: str | None
    winner_source: Literal["recorded", "analysis"] | None
    warnings: list[str]
    error_code: str | None = None


class ExperimentStatuses(ResultModel):
    total: int
    limit: int
    offset: int
    generated_at: datetime
    items: list[ExperimentStatusRow]


def status_row(r: ExperimentResult) -> ExperimentStatusRow:
    keys = {v.variant_id: v.variant_key for v in r.variants}
    head = r.headline()
    headline = None
    if head is not None:
        vid, m = head
        headline = Headline(
            variant_id=vid,
            variant_key=keys.get(vid),
            metric=m.metric,
            difference=m.difference,
            ci_low=m.ci_low,
            ci_high=m.ci_high,
            relative_lift=m.relative_lift,
            p_value_adjusted=m.p_value_adjusted,
            is_significant=m.is_significant,
            direction_good=m.direction_good,
            error_code=m.error_code,
        )
    winner, source = r.recorded_winner_variant_id, "recorded"
    if winner is None:
        winner, source = r.winner_variant_id, "analysis"
    return ExperimentStatusRow(
        experiment_id=r.experiment_id,
        experiment_key=r.experiment_key,
        experiment_name=r.experiment_name,
        schema_id=r.schema_id,
        status=r.status,
        primary_metric=r.primary_metric,
        sequential_testing=r.sequential_testing,
        started_at=r.started_at,
        ended_at=r.ended_at,
        total_executions=r.total_executions,
        exposed_units=r.exposed_units,
        progress_percent=r.progress.progress_percent,
        required_n_per_arm=r.progress.required_n_per_arm,
        days_remaining=r.progress.days_remaining,
        projected_completion_at=r.progress.projected_completion_at,
        variants=[
            VariantBrief(
                variant_id=v.variant_id,
                variant_key=v.variant_key,
                is_control=v.is_control,
                traffic_percentage=v.traffic_percentage,
                sample_size=v.sample_size,
                exposed_units=v.exposed_units,
                completion_percent=v.completion_percent,
                primary_value=(
                    v.summary[r.primary_metric].mean if r.primary_metric in v.summary else None
                ),
                is_winner=v.variant_id == winner,
            )
            for v in r.variants
        ],
        headline=headline,
        srm_mismatch=bool(r.srm and r.srm.is_mismatch),
        srm_p_value=r.srm.p_value if r.srm else None,
        recommendation=r.recommendation,
        winner_variant_id=winner,
        winner_variant_key=keys.get(winner) if winner else None,
        winner_source=source if winner else None,
        warnings=r.warnings,
        error_code=r.error_code,
    )


async def exposure_counts(
    db: Queryable, ids: list[UUID], cache: ExposureCache | None
) -> ExposureCounts:
    """Exposed units per arm: from the cache when fresh, else counted (and cached).

    Counting reads one index entry per exposed unit, the only part of the analysis whose
    cost grows with traffic; the SRM check it feeds moves slowly, so a few seconds of
    staleness are accepted (``Cache-Control: no-cache`` forces a count)."""
    out: ExposureCounts = {}
    missing = []
    for i in ids:
        hit = cache.get(i) if cache is not None else None
        if hit is None:
            missing.append(i)
        else:
            out[i] = hit
    if missing:
        fresh = await fetch_exposure_counts(db, missing)
        for i, counts in fresh.items():
            out[i] = counts
            if cache is not None:
                cache.put(i, counts)
    return out


async def experiment_status(
    db: Queryable, experiment_id: UUID, cache: ExposureCache | None = None
) -> ExperimentResult:
    exposures = await exposure_counts(db, [experiment_id], cache)
    return await load_experiment_result(db, experiment_id, exposures=exposures)


async def experiment_statuses(
    db: Queryable,
    status: str | None,
    schema_id: UUID | None,
    limit: int,
    offset: int,
    cache: ExposureCache | None = None,
) -> ExperimentStatuses:
    now = datetime.now(UTC)
    total, ids = await repo.experiment_page(db, status, schema_id, limit, offset)
    exposures = await exposure_counts(db, ids, cache)
    results = await load_experiment_results(db, ids, now, exposures)
    return ExperimentStatuses(
        total=total,
        limit=limit,
        offset=offset,
        generated_at=now,
        items=[status_row(r) for r in results],
    )
