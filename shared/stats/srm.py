"""Sample-ratio-mismatch (SRM) check.

Pearson's χ² goodness of fit of observed unit counts oᵢ against the configured split:
eᵢ = N·wᵢ/Σw, χ² = Σ(oᵢ − eᵢ)²/eᵢ with k − 1 degrees of freedom (``scipy.stats.chisquare``).
A mismatch is flagged when p < 0.001: a deliberately strict threshold because the check runs
continuously on every experiment and a true SRM usually gives astronomically small p-values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from shared.stats._json import JsonResult
from shared.stats._numeric import chi2_sf, finite_or_none
from shared.stats.errors import ErrorCode

SRM_P_THRESHOLD = 0.001
"""p-value below which a sample ratio mismatch is reported."""


@dataclass(frozen=True, slots=True)
class SrmResult(JsonResult):
    """Outcome of :func:`srm_check`."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    statistic: float | None
    df: int
    p_value: float | None
    is_mismatch: bool
    threshold: float
    error_code: str | None = None


def srm_check(
    observed: Sequence[int],
    weights: Sequence[float] | None = None,
    threshold: float = SRM_P_THRESHOLD,
) -> SrmResult:
    """χ² test of ``observed`` counts against ``weights`` (equal split when None).

    Error codes: ``invalid_input`` (fewer than 2 arms or negative counts),
    ``invalid_weights`` (length mismatch, non-finite or non-positive weights),
    ``insufficient_data`` (no units observed yet).
    """
    try:
        obs = tuple(int(o) for o in observed)
    except (TypeError, ValueError, OverflowError):
        obs = (-1,)
    k = len(obs)
    df = max(k - 1, 0)
    try:
        w = tuple(float(x) for x in weights) if weights is not None else (1.0,) * k
    except (TypeError, ValueError):
        w = ()

    def failed(code: ErrorCode, expected: tuple[float, ...] = ()) -> SrmResult:
        return SrmResult(obs, expected, None, df, None, False, threshold, code)

    if k < 2 or any(o < 0 or o > 2**53 for o in obs):
        return failed(ErrorCode.INVALID_INPUT)
    if len(w) != k or not all(math.isfinite(x) and x > 0.0 for x in w):
        return failed(ErrorCode.INVALID_WEIGHTS)
    total = sum(obs)
    wmax = max(w)  # normalise first so the sum cannot overflow
    wsum = math.fsum(x / wmax for x in w)
    expected = tuple(total * (x / wmax) / wsum for x in w)
    if not all(math.isfinite(e) and e > 0.0 for e in expected) and total > 0:
        return failed(ErrorCode.INVALID_WEIGHTS)
    if total == 0:
        return failed(ErrorCode.INSUFFICIENT_DATA, expected)
    stat = sum((o - e) * (o - e) / e for o, e in zip(obs, expected, strict=True))
    p = finite_or_none(chi2_sf(stat, df))
    return SrmResult(
        observed=obs,
        expected=expected,
        statistic=finite_or_none(stat),
        df=df,
        p_value=p,
        is_mismatch=p is not None and p < threshold,
        threshold=threshold,
    )
