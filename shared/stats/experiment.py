"""Whole-experiment analysis: one control against several treatments on several metrics.

For every metric and treatment :func:`compare_metric` is run against the control; the
p-values of each metric are then Holm-adjusted across the treatments (the family is "all
treatments vs control on this metric", so adding metrics never dilutes the primary
metric's power), and significance uses the adjusted p-value. Confidence intervals are not
adjusted. The SRM check, per-treatment and overall recommendations, the winner and the
progress towards the planned sample size complete the analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats.compare import MetricComparison, compare_metric
from shared.stats.errors import ErrorCode
from shared.stats.metrics import Direction, MetricKind, MetricSpec, get_metric_spec
from shared.stats.multiple import holm_adjust
from shared.stats.power import (
    DEFAULT_POWER,
    SampleSizeResult,
    progress_percent,
    projected_days_remaining,
    sample_size_means,
    sample_size_proportions,
)
from shared.stats.recommendation import (
    DEFAULT_MIN_SAMPLE_SIZE,
    Recommendation,
    overall_recommendation,
    recommend,
)
from shared.stats.sequential import DEFAULT_TUNING_PARAMETER
from shared.stats.srm import SRM_P_THRESHOLD, SrmResult, srm_check
from shared.stats.sufficient import MeanStats, MetricStats, ProportionStats

SRM_WARNING = "sample_ratio_mismatch"


@dataclass(frozen=True, slots=True)
class ProgressResult(JsonResult):
    """Progress of the slowest arm towards the planned units per arm."""

    required_n_per_arm: int | None
    min_arm_n: int
    progress_percent: float | None
    days_remaining: float | None
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class TreatmentAnalysis(JsonResult):
    """All metric comparisons of one treatment against the control."""

    treatment: str
    metrics: Mapping[str, MetricComparison]
    recommendation: Recommendation


@dataclass(frozen=True, slots=True)
class ExperimentAnalysis(JsonResult):
    """Result of :func:`analyze_experiment`."""

    control: str
    primary_metric: str
    confidence_level: float
    sequential: bool
    treatments: Mapping[str, TreatmentAnalysis]
    srm: SrmResult | None
    recommendation: Recommendation
    winner: str | None
    progress: ProgressResult | None
    warnings: tuple[str, ...] = ()
    error_code: str | None = None


def _empty_like(
    metric: str, other: MetricStats | None, registry: Mapping[str, MetricSpec] | None
) -> MetricStats:
    if other is not None:
        return ProportionStats() if isinstance(other, ProportionStats) else MeanStats()
    spec = get_metric_spec(metric, registry)
    return ProportionStats() if spec and spec.kind is MetricKind.PROPORTION else MeanStats()


def _progress(
    control: MetricStats,
    arm_sizes: list[int],
    mde: float,
    relative: bool,
    confidence_level: float,
    power: float,
    days_elapsed: float | None,
) -> ProgressResult:
    min_n = min(arm_sizes)
    size: SampleSizeResult
    mean, sd = control.mean, control.sd
    if mean is None or sd is None:
        return ProgressResult(None, min_n, None, None, ErrorCode.INSUFFICIENT_DATA)
    if isinstance(control, ProportionStats):
        size = sample_size_proportions(
            mean, mde, relative=relative, confidence_level=confidence_level, power=power
        )
    else:
        size = sample_size_means(
            mean, sd, mde, relative=relative, confidence_level=confidence_level, power=power
        )
    required = size.n_per_arm
    rate = min_n / days_elapsed if days_elapsed is not None and days_elapsed > 0 else 0.0
    return ProgressResult(
        required_n_per_arm=required,
        min_arm_n=min_n,
        progress_percent=progress_percent(arm_sizes, required),
        days_remaining=projected_days_remaining(arm_sizes, required, rate),
        error_code=size.error_code,
    )


def _winner(
    candidates: list[str], treatments: Mapping[str, TreatmentAnalysis], primary: str
) -> str | None:
    def score(name: str) -> float:
        r = treatments[name].metrics[primary]
        sign = -1.0 if r.direction is Direction.LOWER_IS_BETTER else 1.0
        return sign * (r.difference or 0.0)

    return max(candidates, key=score) if candidates else None


def analyze_experiment(
    arms: Mapping[str, Mapping[str, MetricStats]],
    control: str,
    primary_metric: str,
    *,
    weights: Mapping[str, float] | None = None,
    unit_counts: Mapping[str, int] | None = None,
    confidence_level: float = 0.95,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING_PARAMETER,
    min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE,
    minimum_detectable_effect: float | None = None,
    mde_relative: bool = True,
    power: float = DEFAULT_POWER,
    days_elapsed: float | None = None,
    srm_threshold: float = SRM_P_THRESHOLD,
    registry: Mapping[str, MetricSpec] | None = None,
) -> ExperimentAnalysis:
    """Analyse ``arms`` (arm name → metric name → sufficient statistics) against ``control``.

    ``weights`` is the configured traffic split (equal when None) and ``unit_counts`` the
    assigned units per arm for the SRM check (default: the primary metric's n). Progress is
    computed when ``minimum_detectable_effect`` is given (relative by default), with the
    planned n derived from the control's primary-metric rate or mean and sd; the daily rate
    is min nᵢ / ``days_elapsed``. The winner is the adopted treatment with the best primary
    estimate in the metric's good direction. Errors: ``invalid_input`` when ``control`` is
    not among at least two arms.
    """
    treatment_names = [a for a in arms if a != control]
    if control not in arms or not treatment_names:
        return ExperimentAnalysis(
            control, primary_metric, confidence_level, sequential, {}, None,
            Recommendation.INCONCLUSIVE, None, None, (), ErrorCode.INVALID_INPUT,
        )  # fmt: skip
    arm_order = [control, *treatment_names]
    metric_names = list(dict.fromkeys([primary_metric, *(m for a in arm_order for m in arms[a])]))

    per_metric: dict[str, dict[str, MetricComparison]] = {}
    for metric in metric_names:
        base = arms[control].get(metric)
        results: dict[str, MetricComparison] = {}
        for name in treatment_names:
            comp = arms[name].get(metric)
            results[name] = compare_metric(
                metric,
                base if base is not None else _empty_like(metric, comp, registry),
                comp if comp is not None else _empty_like(metric, base, registry),
                confidence_level,
                sequential,
                tuning,
                registry=registry,
            )
        adjusted = holm_adjust([results[name].p_value for name in treatment_names])
        per_metric[metric] = {
            name: results[name].with_adjusted_p_value(p)
            for name, p in zip(treatment_names, adjusted, strict=True)
        }

    treatments: dict[str, TreatmentAnalysis] = {}
    for name in treatment_names:
        primary = per_metric[primary_metric][name]
        rec = recommend(
            (primary.baseline.n, primary.comparison.n),
            primary.is_significant,
            primary.direction_good,
            min_sample_size,
        )
        treatments[name] = TreatmentAnalysis(
            name, {m: per_metric[m][name] for m in metric_names}, rec
        )

    first = per_metric[primary_metric][treatment_names[0]]
    arm_sizes = [first.baseline.n] + [
        per_metric[primary_metric][name].comparison.n for name in treatment_names
    ]
    overall = overall_recommendation(
        (t.recommendation for t in treatments.values()), arm_sizes, min_sample_size
    )
    adopted = [
        n for n, t in treatments.items() if t.recommendation is Recommendation.ADOPT_COMPARISON
    ]
    winner = _winner(adopted, treatments, primary_metric)

    observed = [unit_counts.get(a, 0) for a in arm_order] if unit_counts is not None else arm_sizes
    split = [float(weights.get(a, float("nan"))) for a in arm_order] if weights else None
    srm = srm_check(observed, split, srm_threshold)

    progress = None
    if minimum_detectable_effect is not None:
        control_primary = arms[control].get(primary_metric)
        progress = _progress(
            control_primary
            if control_primary is not None
            else _empty_like(primary_metric, None, registry),
            arm_sizes,
            minimum_detectable_effect,
            mde_relative,
            confidence_level,
            power,
            days_elapsed,
        )

    return ExperimentAnalysis(
        control=control,
        primary_metric=primary_metric,
        confidence_level=confidence_level,
        sequential=sequential,
        treatments=treatments,
        srm=srm,
        recommendation=overall,
        winner=winner,
        progress=progress,
        warnings=(SRM_WARNING,) if srm.is_mismatch else (),
    )
