"""Relative lift with a delta-method confidence interval.

Lift L = μ₂/μ₁ − 1 (means, or rates for proportions). As in GrowthBook's gbstats, the
variance of the ratio of two independent sample means comes from the first-order delta
method:

    Var(L) ≈ σ₂² / (n₂·μ₁²) + μ₂²·σ₁² / (n₁·μ₁⁴)

with σᵢ² the per-unit variance (sample variance s², or p(1 − p) for proportions).
The CI is L ± c·√Var(L), where the caller supplies the critical value c (t quantile with
the Welch df for means, normal quantile for proportions, or the confidence-sequence
multiplier under sequential testing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import finite_or_none
from shared.stats.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class LiftResult(JsonResult):
    """Relative lift, its delta-method SE and CI; None where undefined."""

    lift: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    error_code: str | None = None


def lift_variance(
    baseline_mean: float,
    baseline_var: float,
    baseline_n: int,
    comparison_mean: float,
    comparison_var: float,
    comparison_n: int,
) -> float:
    """Delta-method Var(μ₂/μ₁ − 1) = σ₂²/(n₂μ₁²) + μ₂²σ₁²/(n₁μ₁⁴)
    = (σ₂²/n₂ + (μ₂/μ₁)²·σ₁²/n₁) / μ₁²; infinite when μ₁ = 0 or an n is 0."""
    if baseline_mean == 0.0 or baseline_n <= 0 or comparison_n <= 0:
        return math.inf
    ratio = comparison_mean / baseline_mean
    num = comparison_var / comparison_n + ratio * ratio * baseline_var / baseline_n
    return num / baseline_mean / baseline_mean


def relative_lift(
    baseline_mean: float | None,
    baseline_var: float | None,
    baseline_n: int,
    comparison_mean: float | None,
    comparison_var: float | None,
    comparison_n: int,
    critical_value: float | None,
) -> LiftResult:
    """Lift μ₂/μ₁ − 1 with CI L ± critical_value·SE.

    Error codes: ``insufficient_data`` (missing mean/variance or n < 1),
    ``zero_baseline`` (μ₁ = 0). A None ``critical_value`` yields the point estimate and SE
    without a CI.
    """
    if baseline_mean is None or comparison_mean is None or baseline_n < 1 or comparison_n < 1:
        return LiftResult(None, None, None, None, ErrorCode.INSUFFICIENT_DATA)
    if baseline_mean == 0.0:
        return LiftResult(None, None, None, None, ErrorCode.ZERO_BASELINE)
    lift = finite_or_none(comparison_mean / baseline_mean - 1.0)
    if lift is None:
        return LiftResult(None, None, None, None, ErrorCode.ZERO_BASELINE)
    if baseline_var is None or comparison_var is None:
        return LiftResult(lift, None, None, None, ErrorCode.INSUFFICIENT_DATA)
    var = lift_variance(
        baseline_mean, baseline_var, baseline_n, comparison_mean, comparison_var, comparison_n
    )
    se = finite_or_none(math.sqrt(var)) if math.isfinite(var) and var >= 0.0 else None
    if se is None:
        return LiftResult(lift, None, None, None, ErrorCode.ZERO_BASELINE)
    if critical_value is None or not math.isfinite(critical_value):
        return LiftResult(lift, se, None, None)
    half = critical_value * se
    return LiftResult(lift, se, finite_or_none(lift - half), finite_or_none(lift + half))
