"""Always-valid inference: asymptotic confidence sequences (Waudby-Smith et al., 2023,
"Time-uniform central limit theory and asymptotic confidence sequences",
arXiv:2103.06476), parameterised as in GrowthBook's gbstats.

For an estimate θ̂ (difference of means or of rates) with standard error SE after
n = n₁ + n₂ units, α = 1 − confidence_level and tuning parameter N* (the total sample
size at which the sequence is tightest, default 5000):

* ρ² = (−2·ln α + ln(−2·ln α + 1)) / N*
* per-unit variance σ̂² = SE²·n (so SE = σ̂/√n)
* half width  h = σ̂·√( 2(nρ² + 1) / (n²ρ²) · ln(√(nρ² + 1) / α) ) = SE·M(n),
  M(n) = √( 2(nρ² + 1)/(nρ²) · ln(√(nρ² + 1)/α) )
* always-valid p-value (ρ fixed by the configured α):
  p = min(1, √(nρ² + 1) · exp(−nρ²z² / (2(nρ² + 1)))),  z = θ̂/SE,
  the smallest α′ at which the sequence built with the same ρ excludes 0, so
  p < α ⇔ 0 ∉ [θ̂ − h, θ̂ + h].

The sequence covers the true effect at every n simultaneously with probability ≥ 1 − α
(asymptotically), so results may be inspected after every batch without inflating the
false-positive rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import finite_or_none, is_valid_confidence
from shared.stats.errors import ErrorCode

DEFAULT_TUNING_PARAMETER = 5000.0
"""Default N* (``sequential_tuning_parameter``), as in GrowthBook."""


@dataclass(frozen=True, slots=True)
class SequentialInterval(JsonResult):
    """One look of a confidence sequence around ``estimate``."""

    estimate: float | None
    std_error: float | None
    n_total: int
    rho: float | None
    halfwidth: float | None
    ci_low: float | None
    ci_high: float | None
    statistic: float | None
    p_value: float | None
    error_code: str | None = None


def sequential_rho(alpha: float, tuning: float = DEFAULT_TUNING_PARAMETER) -> float:
    """ρ = √((−2·ln α + ln(−2·ln α + 1)) / N*)."""
    la = -2.0 * math.log(alpha)
    return math.sqrt((la + math.log(la + 1.0)) / tuning)


def sequential_multiplier(
    n_total: int, alpha: float, tuning: float = DEFAULT_TUNING_PARAMETER
) -> float:
    """M(n) = √(2(nρ² + 1)/(nρ²) · ln(√(nρ² + 1)/α)), the half width in units of SE."""
    rho = sequential_rho(alpha, tuning)
    nr2 = n_total * rho * rho
    if not nr2 > 0.0:
        return math.inf
    return math.sqrt(2.0 * (nr2 + 1.0) / nr2 * (0.5 * math.log(nr2 + 1.0) - math.log(alpha)))


def sequential_halfwidth(
    std_error: float, n_total: int, alpha: float, tuning: float = DEFAULT_TUNING_PARAMETER
) -> float:
    """h = SE·M(n) (equivalently σ̂·√(2(nρ² + 1)ln(√(nρ² + 1)/α)/(n²ρ²)), σ̂ = SE·√n)."""
    return std_error * sequential_multiplier(n_total, alpha, tuning)


def sequential_p_value(
    estimate: float,
    std_error: float,
    n_total: int,
    alpha: float,
    tuning: float = DEFAULT_TUNING_PARAMETER,
) -> float:
    """p = min(1, √(nρ² + 1)·exp(−nρ²z²/(2(nρ² + 1)))), computed in log space."""
    if not std_error > 0.0:
        return 1.0 if estimate == 0.0 else 0.0
    rho = sequential_rho(alpha, tuning)
    nr2 = max(0.0, n_total * rho * rho)
    z = estimate / std_error
    log_p = 0.5 * math.log(nr2 + 1.0) - nr2 * z * z / (2.0 * (nr2 + 1.0))
    return math.exp(min(0.0, log_p))


def confidence_sequence(
    estimate: float | None,
    std_error: float | None,
    n_total: int,
    confidence_level: float = 0.95,
    tuning: float = DEFAULT_TUNING_PARAMETER,
) -> SequentialInterval:
    """Confidence-sequence interval and always-valid p-value for one look.

    Error codes: ``invalid_input`` (bad confidence or tuning), ``insufficient_data``
    (no estimate/SE or n < 2), ``zero_variance`` (SE = 0).
    """
    est = finite_or_none(estimate)
    se = finite_or_none(std_error)
    if not is_valid_confidence(confidence_level) or not (math.isfinite(tuning) and tuning > 0):
        return SequentialInterval(
            est, se, n_total, None, None, None, None, None, None, ErrorCode.INVALID_INPUT
        )
    alpha = 1.0 - confidence_level
    rho = sequential_rho(alpha, tuning)
    if est is None or se is None or n_total < 2:
        return SequentialInterval(
            est, se, n_total, rho, None, None, None, None, None, ErrorCode.INSUFFICIENT_DATA
        )
    if se <= 0.0:
        return SequentialInterval(
            est, se, n_total, rho, None, None, None, None, None, ErrorCode.ZERO_VARIANCE
        )
    half = sequential_halfwidth(se, n_total, alpha, tuning)
    return SequentialInterval(
        estimate=est,
        std_error=se,
        n_total=n_total,
        rho=rho,
        halfwidth=finite_or_none(half),
        ci_low=finite_or_none(est - half),
        ci_high=finite_or_none(est + half),
        statistic=finite_or_none(est / se),
        p_value=sequential_p_value(est, se, n_total, alpha, tuning),
    )
