"""Two-proportion z-test on :class:`ProportionStats`.

With pᵢ = xᵢ/nᵢ (1 = baseline, 2 = comparison) and pooled p̄ = (x₁ + x₂)/(n₁ + n₂):

* difference d = p₂ − p₁
* z = d / √(p̄(1 − p̄)(1/n₁ + 1/n₂));  p = 2·Φ(−|z|)
  (equals ``statsmodels`` ``proportions_ztest`` and ``chi2_contingency(correction=False)``
  on the 2×2 table, whose χ² = z²)
* CI (unpooled, Wald) = d ± z_{1−α/2}·√(p₁(1 − p₁)/n₁ + p₂(1 − p₂)/n₂)
* Cohen's h = 2·asin(√p₂) − 2·asin(√p₁)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import finite_or_none, is_valid_confidence, norm_ppf, norm_two_sided_p
from shared.stats.errors import ErrorCode
from shared.stats.sufficient import ProportionStats


@dataclass(frozen=True, slots=True)
class ProportionTestResult(JsonResult):
    """Outcome of :func:`two_proportion_test`; fields are None where undefined.

    ``std_error`` is the unpooled SE used by the CI, ``pooled_std_error`` the one used by z.
    """

    difference: float | None
    std_error: float | None
    pooled_std_error: float | None
    statistic: float | None
    p_value: float | None
    ci_low: float | None
    ci_high: float | None
    cohens_h: float | None
    error_code: str | None = None


def cohens_h(p1: float, p2: float) -> float:
    """h = 2·asin(√p₂) − 2·asin(√p₁) (rates clamped to [0, 1])."""
    p1 = min(max(p1, 0.0), 1.0)
    p2 = min(max(p2, 0.0), 1.0)
    return 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1))


def unpooled_std_error(p1: float, n1: int, p2: float, n2: int) -> float:
    """√(p₁(1 − p₁)/n₁ + p₂(1 − p₂)/n₂)."""
    return math.sqrt(p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2)


def two_proportion_test(
    baseline: ProportionStats, comparison: ProportionStats, confidence_level: float = 0.95
) -> ProportionTestResult:
    """Pooled two-proportion z-test of comparison − baseline, two-sided.

    Error codes: ``invalid_input`` (successes outside [0, trials] or bad confidence),
    ``insufficient_data`` (an arm with fewer than 2 trials), ``zero_variance``
    (pooled rate 0 or 1: both arms all-failure or all-success).
    """
    if not (baseline.is_valid and comparison.is_valid and is_valid_confidence(confidence_level)):
        return ProportionTestResult(
            None, None, None, None, None, None, None, None, ErrorCode.INVALID_INPUT
        )
    p1, p2 = baseline.mean, comparison.mean
    diff = None if p1 is None or p2 is None else p2 - p1
    h = None if p1 is None or p2 is None else cohens_h(p1, p2)
    n1, n2 = baseline.trials, comparison.trials
    if p1 is None or p2 is None or diff is None or n1 < 2 or n2 < 2:
        return ProportionTestResult(
            diff, None, None, None, None, None, None, h, ErrorCode.INSUFFICIENT_DATA
        )
    se = unpooled_std_error(p1, n1, p2, n2)
    pooled = (baseline.successes + comparison.successes) / (n1 + n2)
    pooled_var = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if pooled_var <= 0.0:
        return ProportionTestResult(
            diff, se, 0.0, None, None, None, None, h, ErrorCode.ZERO_VARIANCE
        )
    pooled_se = math.sqrt(pooled_var)
    z = diff / pooled_se
    half = norm_ppf(1.0 - (1.0 - confidence_level) / 2.0) * se
    return ProportionTestResult(
        difference=diff,
        std_error=se,
        pooled_std_error=pooled_se,
        statistic=finite_or_none(z),
        p_value=finite_or_none(norm_two_sided_p(z)),
        ci_low=diff - half,
        ci_high=diff + half,
        cohens_h=h,
    )
