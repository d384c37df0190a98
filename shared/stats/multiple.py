"""Holm's step-down adjustment for several treatments facing one control.

Sort the m valid p-values ascending, p₍₁₎ ≤ … ≤ p₍ₘ₎; the adjusted values are
p̃₍ᵢ₎ = min(1, max_{j ≤ i} (m − j + 1)·p₍ⱼ₎), which controls the family-wise error rate
at α under any dependence. Matches ``statsmodels.stats.multitest.multipletests(method="holm")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def holm_adjust(p_values: Sequence[float | None]) -> tuple[float | None, ...]:
    """Holm-adjusted p-values in input order; None (or non-finite) inputs stay None and are
    not counted in m."""
    valid = [(p, i) for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    m = len(valid)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(valid, key=lambda t: t[0])):
        running = max(running, p * (m - rank))
        out[i] = min(1.0, running)
    return tuple(out)


def holm_reject(p_values: Sequence[float | None], alpha: float = 0.05) -> tuple[bool, ...]:
    """Holm step-down rejections: reject p₍ᵢ₎ while p₍ⱼ₎ ≤ α/(m − j + 1) for all j ≤ i."""
    valid = [(p, i) for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    m = len(valid)
    out = [False] * len(p_values)
    for rank, (p, i) in enumerate(sorted(valid, key=lambda t: t[0])):
        if p > alpha / (m - rank):
            break
        out[i] = True
    return tuple(out)
