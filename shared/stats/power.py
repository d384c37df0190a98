"""Sample size for a minimum detectable effect (MDE), progress and projected duration.

Two-sided normal approximation at α = 1 − confidence_level and power 1 − β (default 0.8),
equal allocation, zₓ = Φ⁻¹(x):

* proportions (p₁ baseline, p₂ = p₁ + δ, p̄ = (p₁ + p₂)/2):
  n = ⌈(z_{1−α/2}·√(2p̄(1 − p̄)) + z_{1−β}·√(p₁(1 − p₁) + p₂(1 − p₂)))² / δ²⌉
* means (common sd σ): n = ⌈2σ²·(z_{1−α/2} + z_{1−β})² / δ²⌉

A relative MDE r means δ = r·p₁ (or r·|μ₁|). Progress = min over arms of nᵢ / n (capped at
100 %); days remaining = (n − min nᵢ) / (daily units per arm), None when the rate is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import is_valid_confidence, norm_ppf
from shared.stats.errors import ErrorCode

DEFAULT_POWER = 0.8


@dataclass(frozen=True, slots=True)
class SampleSizeResult(JsonResult):
    """Required units per arm; ``effect`` is the absolute δ that was planned for."""

    n_per_arm: int | None
    effect: float | None
    alpha: float
    power: float
    error_code: str | None = None


def _z_values(confidence_level: float, power: float) -> tuple[float, float] | None:
    if not (is_valid_confidence(confidence_level) and is_valid_confidence(power)):
        return None
    return norm_ppf(1.0 - (1.0 - confidence_level) / 2.0), norm_ppf(power)


def _ceil(x: float) -> int | None:
    if not math.isfinite(x):
        return None
    # Guard against 1000.0000000001 from rounding rounding up to 1001.
    return max(1, math.ceil(x - 1e-9 * max(1.0, x)))


def _result(n: float, delta: float, alpha: float, power: float) -> SampleSizeResult:
    size = _ceil(n)
    if size is None:  # an effect so small that n overflows
        return SampleSizeResult(None, delta, alpha, power, ErrorCode.INVALID_EFFECT)
    return SampleSizeResult(size, delta, alpha, power)


def sample_size_proportions(
    baseline_rate: float,
    mde: float,
    *,
    relative: bool = False,
    confidence_level: float = 0.95,
    power: float = DEFAULT_POWER,
) -> SampleSizeResult:
    """Units per arm to detect p₂ = p₁ + δ with the pooled two-proportion z-test."""
    alpha = 1.0 - confidence_level
    z = _z_values(confidence_level, power)
    if z is None or not (math.isfinite(baseline_rate) and 0.0 < baseline_rate < 1.0):
        return SampleSizeResult(None, None, alpha, power, ErrorCode.INVALID_INPUT)
    delta = mde * baseline_rate if relative else mde
    p1, p2 = baseline_rate, baseline_rate + delta
    if not math.isfinite(delta) or delta == 0.0 or not 0.0 < p2 < 1.0:
        return SampleSizeResult(None, None, alpha, power, ErrorCode.INVALID_EFFECT)
    za, zb = z
    pbar = (p1 + p2) / 2.0
    num = za * math.sqrt(2.0 * pbar * (1.0 - pbar)) + zb * math.sqrt(
        p1 * (1.0 - p1) + p2 * (1.0 - p2)
    )
    return _result((num / delta) * (num / delta), delta, alpha, power)


def sample_size_means(
    baseline_mean: float,
    baseline_sd: float,
    mde: float,
    *,
    relative: bool = False,
    confidence_level: float = 0.95,
    power: float = DEFAULT_POWER,
) -> SampleSizeResult:
    """Units per arm to detect μ₂ = μ₁ + δ with a two-sample test, common sd σ."""
    alpha = 1.0 - confidence_level
    z = _z_values(confidence_level, power)
    if (
        z is None
        or not (math.isfinite(baseline_sd) and baseline_sd > 0.0)
        or not math.isfinite(baseline_mean)
    ):
        return SampleSizeResult(None, None, alpha, power, ErrorCode.INVALID_INPUT)
    if relative and baseline_mean == 0.0:
        return SampleSizeResult(None, None, alpha, power, ErrorCode.ZERO_BASELINE)
    delta = mde * abs(baseline_mean) if relative else mde
    if not math.isfinite(delta) or delta == 0.0:
        return SampleSizeResult(None, None, alpha, power, ErrorCode.INVALID_EFFECT)
    za, zb = z
    ratio = baseline_sd * (za + zb) / delta
    return _result(2.0 * ratio * ratio, delta, alpha, power)


def progress_percent(current_n: int | Sequence[int], required_n: int | None) -> float | None:
    """100·min(nᵢ)/n_required, capped at 100; None without a valid requirement or arms."""
    arms = [current_n] if isinstance(current_n, int) else list(current_n)
    if required_n is None or required_n <= 0 or not arms:
        return None
    return min(100.0, 100.0 * max(0, min(arms)) / required_n)


def projected_days_remaining(
    current_n: int | Sequence[int], required_n: int | None, daily_rate: float
) -> float | None:
    """(n_required − min nᵢ) / daily_rate days (0 when reached); None when the rate is not
    positive or the requirement is unknown. ``daily_rate`` is units per day in the slowest arm."""
    arms = [current_n] if isinstance(current_n, int) else list(current_n)
    if required_n is None or not arms:
        return None
    remaining = required_n - min(arms)
    if remaining <= 0:
        return 0.0
    if not (math.isfinite(daily_rate) and daily_rate > 0.0):
        return None
    return remaining / daily_rate
