"""Welch's unequal-variance t-test on :class:`MeanStats`.

With x̄ᵢ, sᵢ², nᵢ (1 = baseline, 2 = comparison) and vᵢ = sᵢ²/nᵢ:

* difference d = x̄₂ − x̄₁,  SE = √(v₁ + v₂),  t = d / SE
* Welch–Satterthwaite df ν = (v₁ + v₂)² / (v₁²/(n₁ − 1) + v₂²/(n₂ − 1))
* p = 2·T_ν(−|t|);  CI = d ± t_{ν, 1−α/2}·SE
* Cohen's d = d / s_p,  s_p = √(((n₁ − 1)s₁² + (n₂ − 1)s₂²) / (n₁ + n₂ − 2))

Identical to ``scipy.stats.ttest_ind(comparison, baseline, equal_var=False)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import finite_or_none, is_valid_confidence, t_ppf, t_two_sided_p
from shared.stats.errors import ErrorCode
from shared.stats.sufficient import MeanStats


@dataclass(frozen=True, slots=True)
class WelchResult(JsonResult):
    """Outcome of :func:`welch_test`; fields are None where undefined."""

    difference: float | None
    std_error: float | None
    statistic: float | None
    df: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    cohens_d: float | None
    error_code: str | None = None


def welch_df(var1: float, n1: int, var2: float, n2: int) -> float | None:
    """Welch–Satterthwaite degrees of freedom; None when both variances are 0 or n < 2."""
    if n1 < 2 or n2 < 2:
        return None
    v1 = var1 / n1
    v2 = var2 / n2
    scale = max(v1, v2)  # rescaling avoids overflow/underflow of the squares
    if not (scale > 0.0 and math.isfinite(scale)):
        return None
    a, b = v1 / scale, v2 / scale
    return finite_or_none((a + b) * (a + b) / (a * a / (n1 - 1) + b * b / (n2 - 1)))


def pooled_sd(var1: float, n1: int, var2: float, n2: int) -> float | None:
    """√(((n₁ − 1)s₁² + (n₂ − 1)s₂²) / (n₁ + n₂ − 2)); None when n₁ + n₂ ≤ 2."""
    if n1 + n2 <= 2:
        return None
    return math.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2))


def cohens_d(baseline: MeanStats, comparison: MeanStats) -> float | None:
    """Standardised mean difference (x̄₂ − x̄₁)/s_p; None when undefined or s_p = 0."""
    m1, m2 = baseline.mean, comparison.mean
    v1, v2 = baseline.variance, comparison.variance
    if m1 is None or m2 is None or v1 is None or v2 is None:
        return None
    sp = pooled_sd(v1, baseline.n, v2, comparison.n)
    if sp is None or sp == 0.0:
        return None
    return finite_or_none((m2 - m1) / sp)


def _empty(code: ErrorCode, difference: float | None = None) -> WelchResult:
    return WelchResult(finite_or_none(difference), None, None, None, None, None, None, None, code)


def welch_test(
    baseline: MeanStats, comparison: MeanStats, confidence_level: float = 0.95
) -> WelchResult:
    """Welch's t-test of comparison − baseline, two-sided at α = 1 − confidence_level.

    Error codes: ``invalid_input`` (bad stats or confidence), ``insufficient_data``
    (an arm with n < 2), ``zero_variance`` (s₁ = s₂ = 0: t undefined).
    """
    if not (baseline.is_valid and comparison.is_valid and is_valid_confidence(confidence_level)):
        return _empty(ErrorCode.INVALID_INPUT)
    m1, m2 = baseline.mean, comparison.mean
    diff = None if m1 is None or m2 is None else m2 - m1
    v1, v2 = baseline.variance, comparison.variance
    if v1 is None or v2 is None or m1 is None or m2 is None or diff is None:
        return _empty(ErrorCode.INSUFFICIENT_DATA, diff)
    n1, n2 = baseline.n, comparison.n
    se2 = v1 / n1 + v2 / n2
    df = welch_df(v1, n1, v2, n2)
    if se2 <= 0.0 or df is None:
        return _empty(ErrorCode.ZERO_VARIANCE, diff)
    se = math.sqrt(se2)
    t = diff / se
    half = t_ppf(1.0 - (1.0 - confidence_level) / 2.0, df) * se
    return WelchResult(
        difference=finite_or_none(diff),
        std_error=finite_or_none(se),
        statistic=finite_or_none(t),
        df=df,
        p_value=finite_or_none(t_two_sided_p(t, df)),
        ci_low=finite_or_none(diff - half),
        ci_high=finite_or_none(diff + half),
        cohens_d=cohens_d(baseline, comparison),
    )
