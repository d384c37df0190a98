"""High-level comparison of one metric between a baseline and a comparison arm.

Dispatches on the metric kind (registry, or the statistics' type for unregistered
metrics): Welch's t-test for continuous metrics, the pooled two-proportion z-test for
proportions, optionally replaced by an always-valid confidence sequence
(``sequential=True``). Adds the relative lift with a delta-method CI, the effect size
(Cohen's d or h) and whether the change is an improvement for the metric's direction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import is_valid_confidence, norm_ppf, t_ppf
from shared.stats.errors import ErrorCode
from shared.stats.lift import relative_lift
from shared.stats.metrics import Direction, MetricKind, MetricSpec, get_metric_spec, is_improvement
from shared.stats.proportions import two_proportion_test
from shared.stats.sequential import (
    DEFAULT_TUNING_PARAMETER,
    confidence_sequence,
    sequential_multiplier,
)
from shared.stats.sufficient import MeanStats, MetricStats, ProportionStats
from shared.stats.welch import welch_test


@dataclass(frozen=True, slots=True)
class ArmSummary(JsonResult):
    """Size and location of one arm; ``mean`` is the rate for proportions."""

    n: int
    mean: float | None
    sd: float | None

    @classmethod
    def of(cls, stats: MetricStats) -> ArmSummary:
        """Summary of either kind of sufficient statistic."""
        return cls(stats.n, stats.mean, stats.sd)


@dataclass(frozen=True, slots=True)
class MetricComparison(JsonResult):
    """Result of :func:`compare_metric`. ``difference`` and the CI are comparison − baseline;
    ``is_significant`` is ``p_value_adjusted < 1 − confidence_level`` (equal to the raw
    p-value unless adjusted for multiple treatments)."""

    metric: str
    kind: MetricKind
    direction: Direction | None
    method: str
    baseline: ArmSummary
    comparison: ArmSummary
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    relative_lift: float | None
    lift_ci_low: float | None
    lift_ci_high: float | None
    p_value: float | None
    p_value_adjusted: float | None
    statistic: float | None
    df: float | None
    effect_size: float | None
    effect_size_name: str
    is_significant: bool
    direction_good: bool | None
    confidence_level: float
    sequential: bool
    error_code: str | None = None

    @property
    def alpha(self) -> float:
        """1 − confidence_level."""
        return 1.0 - self.confidence_level

    @property
    def is_improvement(self) -> bool:
        """Significant and in the metric's good direction."""
        return self.is_significant and self.direction_good is True

    def with_adjusted_p_value(self, p_value_adjusted: float | None) -> MetricComparison:
        """Copy with an adjusted p-value and the significance it implies."""
        return dataclasses.replace(
            self,
            p_value_adjusted=p_value_adjusted,
            is_significant=p_value_adjusted is not None and p_value_adjusted < self.alpha,
        )


_METHODS = {
    (MetricKind.CONTINUOUS, False): "welch_t",
    (MetricKind.PROPORTION, False): "two_proportion_z",
    (MetricKind.CONTINUOUS, True): "sequential_mean_difference",
    (MetricKind.PROPORTION, True): "sequential_proportion_difference",
}


def _kind_of(stats: MetricStats) -> MetricKind:
    return MetricKind.PROPORTION if isinstance(stats, ProportionStats) else MetricKind.CONTINUOUS


def _failed(
    metric: str,
    kind: MetricKind,
    direction: Direction | None,
    baseline: MetricStats,
    comparison: MetricStats,
    confidence_level: float,
    sequential: bool,
    code: ErrorCode,
) -> MetricComparison:
    return MetricComparison(
        metric=metric,
        kind=kind,
        direction=direction,
        method=_METHODS[(kind, sequential)],
        baseline=ArmSummary.of(baseline),
        comparison=ArmSummary.of(comparison),
        difference=None,
        ci_low=None,
        ci_high=None,
        relative_lift=None,
        lift_ci_low=None,
        lift_ci_high=None,
        p_value=None,
        p_value_adjusted=None,
        statistic=None,
        df=None,
        effect_size=None,
        effect_size_name="cohens_h" if kind is MetricKind.PROPORTION else "cohens_d",
        is_significant=False,
        direction_good=None,
        confidence_level=confidence_level,
        sequential=sequential,
        error_code=code,
    )


def compare_metric(
    metric_name: str,
    baseline_stats: MetricStats,
    comparison_stats: MetricStats,
    confidence_level: float = 0.95,
    sequential: bool = False,
    tuning: float = DEFAULT_TUNING_PARAMETER,
    *,
    registry: Mapping[str, MetricSpec] | None = None,
) -> MetricComparison:
    """Compare ``comparison_stats`` against ``baseline_stats`` for ``metric_name``.

    Unregistered metrics are analysed by the statistics' type with ``direction=None``.
    Never raises: degenerate input yields None fields and an ``error_code`` (the test's
    code takes precedence over the lift's, e.g. ``zero_baseline``).
    """
    spec = get_metric_spec(metric_name, registry)
    kind = spec.kind if spec is not None else _kind_of(baseline_stats)
    direction = spec.direction if spec is not None else None
    args = (baseline_stats, comparison_stats, confidence_level, sequential)
    if _kind_of(baseline_stats) is not kind or _kind_of(comparison_stats) is not kind:
        return _failed(metric_name, kind, direction, *args, ErrorCode.STATS_TYPE_MISMATCH)
    if not is_valid_confidence(confidence_level):
        return _failed(metric_name, kind, direction, *args, ErrorCode.INVALID_INPUT)
    alpha = 1.0 - confidence_level

    p_value: float | None
    if isinstance(baseline_stats, MeanStats) and isinstance(comparison_stats, MeanStats):
        w = welch_test(baseline_stats, comparison_stats, confidence_level)
        diff, se, error = w.difference, w.std_error, w.error_code
        ci_low, ci_high, p_value, stat, df = w.ci_low, w.ci_high, w.p_value, w.statistic, w.df
        effect, effect_name = w.cohens_d, "cohens_d"
        crit = None if df is None else t_ppf(1.0 - alpha / 2.0, df)
    elif isinstance(baseline_stats, ProportionStats) and isinstance(
        comparison_stats, ProportionStats
    ):
        r = two_proportion_test(baseline_stats, comparison_stats, confidence_level)
        diff, se, error = r.difference, r.std_error, r.error_code
        ci_low, ci_high, p_value, stat, df = r.ci_low, r.ci_high, r.p_value, r.statistic, None
        effect, effect_name = r.cohens_h, "cohens_h"
        crit = norm_ppf(1.0 - alpha / 2.0)
    else:  # pragma: no cover - excluded by the kind check above
        return _failed(metric_name, kind, direction, *args, ErrorCode.STATS_TYPE_MISMATCH)

    n_total = baseline_stats.n + comparison_stats.n
    if sequential and error is None:
        cs = confidence_sequence(diff, se, n_total, confidence_level, tuning)
        ci_low, ci_high, p_value, stat, df = cs.ci_low, cs.ci_high, cs.p_value, cs.statistic, None
        error = cs.error_code
        crit = None if error else sequential_multiplier(n_total, alpha, tuning)
    elif sequential:
        crit = None
    if error is not None:
        crit = None

    lift = relative_lift(
        baseline_stats.mean, baseline_stats.variance, baseline_stats.n,
        comparison_stats.mean, comparison_stats.variance, comparison_stats.n, crit,
    )  # fmt: skip
    return MetricComparison(
        metric=metric_name,
        kind=kind,
        direction=direction,
        method=_METHODS[(kind, sequential)],
        baseline=ArmSummary.of(baseline_stats),
        comparison=ArmSummary.of(comparison_stats),
        difference=diff,
        ci_low=ci_low,
        ci_high=ci_high,
        relative_lift=lift.lift,
        lift_ci_low=lift.ci_low,
        lift_ci_high=lift.ci_high,
        p_value=p_value,
        p_value_adjusted=p_value,
        statistic=stat,
        df=df,
        effect_size=effect,
        effect_size_name=effect_name,
        is_significant=p_value is not None and p_value < alpha,
        direction_good=is_improvement(direction, diff),
        confidence_level=confidence_level,
        sequential=sequential,
        error_code=error if error is not None else lift.error_code,
    )
