"""Experiment results from the aggregates in PostgreSQL, and winner determination.

Used by the analysis service (``GET /api/v1/experiments/{id}/status`` and ``/statuses``)
and by the control plane's ``complete`` action::

    decision = await determine_winner(conn, experiment_id)
    # decision.winner_variant_id, decision.p_value, decision.effect_size, decision.results

Loading (:mod:`shared.results.inputs`) is two queries whatever the traffic.
:func:`analyze` is pure: it maps the experiment's settings onto
:func:`shared.stats.analyze_experiment` (α = 1 − confidence_level, Holm over the
treatments of each metric, the sequential option with ``sequential_tuning`` as N*,
``min_sample_size`` for the recommendation, ``minimum_detectable_effect`` as a RELATIVE
MDE at 80% power for the planned sample size; without an MDE the plan is
``min_sample_size`` per arm).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from shared.errors import NotFoundError
from shared.results.aggregates import METRICS, Queryable
from shared.results.inputs import (
    ArmRecord,
    ExperimentInputs,
    ExperimentRecord,
    ExposureCounts,
    fetch_exposure_counts,
    fetch_inputs,
)
from shared.results.models import ArmSummaryModel, Finite, MetricResult, ResultModel, SrmModel
from shared.stats import (
    ExperimentAnalysis,
    MetricStats,
    Recommendation,
    analyze_experiment,
    progress_percent,
    projected_days_remaining,
)

__all__ = [
    "ArmRecord",
    "ExperimentInputs",
    "ExperimentNotFound",
    "ExperimentRecord",
    "ExperimentResult",
    "ExposureCounts",
    "ProgressModel",
    "VariantResult",
    "WinnerDecision",
    "analyze",
    "determine_winner",
    "fetch_exposure_counts",
    "fetch_inputs",
    "load_experiment_result",
    "load_experiment_results",
    "winner_of",
]


class ExperimentNotFound(NotFoundError):
    code = "experiment_not_found"


# ------------------------------------------------------------------------------- results


class ProgressModel(ResultModel):
    """Progress of the slowest arm towards the planned sample size per arm.

    ``basis`` says where the plan comes from: the sample size needed to detect the
    experiment's ``minimum_detectable_effect`` (relative) at its α and 80% power, or its
    ``min_sample_size`` when no MDE is set (or the MDE plan is undefined). The daily rate
    is min nᵢ / days elapsed since the start (to the end, or to the latest pause while
    paused); ``projected_completion_at`` is given only while the experiment is running.
    """

    basis: Literal["minimum_detectable_effect", "min_sample_size"]
    required_n_per_arm: int | None
    min_arm_n: int
    progress_percent: Finite = None
    days_elapsed: Finite = None
    days_remaining: Finite = None
    projected_completion_at: datetime | None = None
    error_code: str | None = None


class VariantResult(ResultModel):
    """One arm: its size and metrics, and (treatments) its comparison against control."""

    variant_id: UUID
    variant_key: str | None
    variant_name: str | None
    position: int
    is_control: bool
    traffic_percentage: float
    sample_size: int
    successful_executions: int
    failed_executions: int
    exposed_units: int
    completion_percent: Finite = None
    summary: dict[str, ArmSummaryModel]
    metrics: dict[str, MetricResult]
    recommendation: str | None
    is_winner: bool


class ExperimentResult(ResultModel):
    """Full analysis of one experiment (the ``/experiments/{id}/status`` body).

    ``data_last_hour`` is the latest UTC hour with aggregated executions of any arm."""

    experiment_id: UUID
    experiment_key: str
    experiment_name: str
    schema_id: UUID
    status: str
    primary_metric: str
    secondary_metrics: list[str]
    metrics: list[str]
    confidence_level: float
    alpha: float
    min_sample_size: int
    sequential_testing: bool
    sequential_tuning: float
    minimum_detectable_effect: Finite = None
    multiple_comparison_correction: str = "holm"
    started_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    analyzed_at: datetime
    data_last_hour: datetime | None
    total_executions: int
    exposed_units: int
    control_variant_id: UUID | None
    variants: list[VariantResult]
    srm: SrmModel | None
    progress: ProgressModel
    recommendation: str
    winner_variant_id: UUID | None
    recorded_winner_variant_id: UUID | None
    recorded_p_value: Finite = None
    recorded_effect_size: Finite = None
    warnings: list[str]
    error_code: str | None = None

    def variant(self, variant_id: UUID) -> VariantResult | None:
        return next((v for v in self.variants if v.variant_id == variant_id), None)

    def headline(self) -> tuple[UUID, MetricResult] | None:
        """The primary-metric result that sums the experiment up: the winner's, else the
        treatment with the smallest adjusted p-value, else the first treatment."""
        rows = [
            (v.variant_id, v.metrics[self.primary_metric])
            for v in self.variants
            if not v.is_control and self.primary_metric in v.metrics
        ]
        if not rows:
            return None
        if self.winner_variant_id is not None:
            for vid, r in rows:
                if vid == self.winner_variant_id:
                    return vid, r
        return min(
            rows, key=lambda x: (x[1].p_value_adjusted is None, x[1].p_value_adjusted or 0.0)
        )


class WinnerDecision(ResultModel):
    """What the control plane records on ``complete``.

    ``winner_variant_id`` is the adopted treatment with the best primary estimate (None
    when no treatment is a significant improvement). ``p_value`` is the Holm-adjusted
    p-value of its primary metric against the control (``p_value_raw`` unadjusted) and
    ``effect_size`` Cohen's d or h of the same comparison; without a winner they describe
    the headline treatment (smallest adjusted p-value), so the record shows how close the
    experiment came. ``results`` is the whole :class:`ExperimentResult` as JSON, for
    ``experiments.results``.
    """

    experiment_id: UUID
    winner_variant_id: UUID | None
    p_value: Finite = None
    p_value_raw: Finite = None
    effect_size: Finite = None
    effect_size_name: str | None = None
    compared_variant_id: UUID | None = None
    primary_metric: str
    recommendation: str
    is_significant: bool
    results: dict[str, Any]


def _ordered_metrics(e: ExperimentRecord) -> list[str]:
    out = [e.primary_metric, *e.secondary_metrics, *METRICS]
    return list(dict.fromkeys(m for m in out if m in METRICS))


def _days_elapsed(e: ExperimentRecord, now: datetime) -> float | None:
    if e.started_at is None:
        return None
    end = e.ended_at or (e.paused_at if e.status == "paused" else None) or now
    return max(0.0, (end - e.started_at).total_seconds() / 86400.0)


def _progress(
    e: ExperimentRecord,
    analysis: ExperimentAnalysis | None,
    arm_sizes: list[int],
    now: datetime,
) -> ProgressModel:
    days = _days_elapsed(e, now)
    min_n = min(arm_sizes) if arm_sizes else 0
    p = analysis.progress if analysis is not None else None
    if p is not None and p.required_n_per_arm is not None:
        basis: Literal["minimum_detectable_effect", "min_sample_size"] = "minimum_detectable_effect"
        required: int | None = p.required_n_per_arm
        pct, remaining, error = p.progress_percent, p.days_remaining, p.error_code
    else:
        basis, required = "min_sample_size", e.min_sample_size
        rate = min_n / days if days else 0.0
        pct = progress_percent(arm_sizes, required) if arm_sizes else 0.0
        remaining = projected_days_remaining(arm_sizes, required, rate) if arm_sizes else None
        error = p.error_code if p is not None else None
    eta = None
    if e.status == "running" and remaining is not None:
        eta = now + timedelta(days=remaining)
    return ProgressModel(
        basis=basis,
        required_n_per_arm=required,
        min_arm_n=min_n,
        progress_percent=pct,
        days_elapsed=days,
        days_remaining=remaining,
        projected_completion_at=eta,
        error_code=error,
    )


def analyze(inputs: ExperimentInputs, now: datetime | None = None) -> ExperimentResult:
    """Analyse one experiment (pure; ``now`` defaults to the current UTC time)."""
    now = now or datetime.now(UTC)
    e, arms = inputs.experiment, list(inputs.arms)
    metrics = _ordered_metrics(e)
    warnings: list[str] = []
    error: str | None = None

    control = next((a for a in arms if a.is_control), None)
    if control is None and arms:
        control = min(arms, key=lambda a: a.position)
        warnings.append("no_control_arm_flagged")
    analysis: ExperimentAnalysis | None = None
    if control is None or len(arms) < 2:
        error = "not_enough_arms"
    else:
        stats: dict[str, dict[str, MetricStats]] = {
            str(a.variant_id): a.aggregate.metric_stats(metrics)
            for a in [control, *(a for a in arms if a is not control)]
        }
        analysis = analyze_experiment(
            stats,
            str(control.variant_id),
            e.primary_metric,
            weights={str(a.variant_id): a.traffic_percentage for a in arms},
            unit_counts={str(a.variant_id): a.exposed_units for a in arms},
            confidence_level=e.confidence_level,
            sequential=e.sequential_testing,
            tuning=e.sequential_tuning,
            min_sample_size=e.min_sample_size,
            minimum_detectable_effect=e.minimum_detectable_effect,
            mde_relative=True,
            days_elapsed=_days_elapsed(e, now),
        )
        warnings.extend(analysis.warnings)
        error = analysis.error_code

    arm_sizes = [a.aggregate.stats(e.primary_metric).n for a in arms]
    progress = _progress(e, analysis, arm_sizes, now)
    required = progress.required_n_per_arm
    winner = UUID(analysis.winner) if analysis is not None and analysis.winner else None

    variants: list[VariantResult] = []
    for arm in arms:
        agg = arm.aggregate
        treatment = (
            analysis.treatments.get(str(arm.variant_id))
            if analysis is not None and arm is not control
            else None
        )
        n_primary = agg.stats(e.primary_metric).n
        variants.append(
            VariantResult(
                variant_id=arm.variant_id,
                variant_key=arm.variant_key,
                variant_name=arm.variant_name,
                position=arm.position,
                is_control=arm is control,
                traffic_percentage=arm.traffic_percentage,
                sample_size=agg.total_executions,
                successful_executions=agg.successful_executions,
                failed_executions=agg.failed_executions,
                exposed_units=arm.exposed_units,
                completion_percent=(min(100.0, 100.0 * n_primary / required) if required else None),
                summary={
                    m: ArmSummaryModel(n=s.n, mean=s.mean, sd=s.sd)
                    for m, s in agg.metric_stats(metrics).items()
                },
                metrics=(
                    {m: MetricResult.of(r) for m, r in treatment.metrics.items()}
                    if treatment is not None
                    else {}
                ),
                recommendation=treatment.recommendation.value if treatment is not None else None,
                is_winner=arm.variant_id == winner,
            )
        )

    hours = [a.aggregate.last_period_start for a in arms if a.aggregate.last_period_start]
    return ExperimentResult(
        experiment_id=e.id,
        experiment_key=e.key,
        experiment_name=e.name,
        schema_id=e.schema_id,
        status=e.status,
        primary_metric=e.primary_metric,
        secondary_metrics=list(e.secondary_metrics),
        metrics=metrics,
        confidence_level=e.confidence_level,
        alpha=1.0 - e.confidence_level,
        min_sample_size=e.min_sample_size,
        sequential_testing=e.sequential_testing,
        sequential_tuning=e.sequential_tuning,
        minimum_detectable_effect=e.minimum_detectable_effect,
        started_at=e.started_at,
        paused_at=e.paused_at,
        ended_at=e.ended_at,
        analyzed_at=now,
        data_last_hour=max(hours) if hours else None,
        total_executions=sum(a.aggregate.total_executions for a in arms),
        exposed_units=sum(a.exposed_units for a in arms),
        control_variant_id=control.variant_id if control is not None else None,
        variants=variants,
        srm=SrmModel.of(analysis.srm) if analysis is not None and analysis.srm else None,
        progress=progress,
        recommendation=(
            analysis.recommendation.value
            if analysis is not None
            else Recommendation.NEEDS_MORE_DATA.value
        ),
        winner_variant_id=winner,
        recorded_winner_variant_id=e.winning_variant_id,
        recorded_p_value=e.p_value,
        recorded_effect_size=e.effect_size,
        warnings=warnings,
        error_code=error,
    )


async def load_experiment_results(
    db: Queryable,
    ids: Sequence[UUID],
    now: datetime | None = None,
    exposures: ExposureCounts | None = None,
) -> list[ExperimentResult]:
    """Results of the known experiments among ``ids``, in the order given."""
    inputs = await fetch_inputs(db, ids, exposures)
    now = now or datetime.now(UTC)
    return [analyze(inputs[i], now) for i in ids if i in inputs]


async def load_experiment_result(
    db: Queryable,
    experiment_id: UUID,
    now: datetime | None = None,
    exposures: ExposureCounts | None = None,
) -> ExperimentResult:
    """Result of one experiment; :class:`ExperimentNotFound` (HTTP 404) when unknown."""
    results = await load_experiment_results(db, [experiment_id], now, exposures)
    if not results:
        raise ExperimentNotFound(
            f"experiment {experiment_id} does not exist", experiment_id=str(experiment_id)
        )
    return results[0]


def winner_of(result: ExperimentResult) -> WinnerDecision:
    """The decision recorded when the experiment is completed (see :class:`WinnerDecision`)."""
    head = result.headline()
    compared, primary = head if head is not None else (None, None)
    return WinnerDecision(
        experiment_id=result.experiment_id,
        winner_variant_id=result.winner_variant_id,
        p_value=primary.p_value_adjusted if primary else None,
        p_value_raw=primary.p_value if primary else None,
        effect_size=primary.effect_size if primary else None,
        effect_size_name=primary.effect_size_name if primary else None,
        compared_variant_id=compared,
        primary_metric=result.primary_metric,
        recommendation=result.recommendation,
        is_significant=bool(primary and primary.is_significant),
        results=result.model_dump(mode="json"),
    )


async def determine_winner(
    db: Queryable, experiment_id: UUID, now: datetime | None = None
) -> WinnerDecision:
    """Load, analyse and decide (raises :class:`ExperimentNotFound` for an unknown id)."""
    return winner_of(await load_experiment_result(db, experiment_id, now))
