"""Decision rule turning the primary metric's comparison into a recommendation.

1. ``needs_more_data`` while any arm has fewer than ``min_sample_size`` units (default 100);
2. else ``adopt_comparison`` on a significant improvement of the primary metric;
3. ``keep_baseline`` on a significant regression;
4. ``inconclusive`` otherwise (including undefined tests).

Across several treatments: ``needs_more_data`` while any arm is short; else
``adopt_comparison`` when at least one treatment is adopted (the winner is chosen by the
caller); ``keep_baseline`` when every treatment is ``keep_baseline``; else ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

DEFAULT_MIN_SAMPLE_SIZE = 100


class Recommendation(StrEnum):
    """What to do with a treatment (or the whole experiment)."""

    NEEDS_MORE_DATA = "needs_more_data"
    ADOPT_COMPARISON = "adopt_comparison"
    KEEP_BASELINE = "keep_baseline"
    INCONCLUSIVE = "inconclusive"


def recommend(
    arm_sizes: Iterable[int],
    is_significant: bool,
    direction_good: bool | None,
    min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE,
) -> Recommendation:
    """Apply the rule above to one baseline/comparison pair (``arm_sizes`` = both n)."""
    if any(n < min_sample_size for n in arm_sizes):
        return Recommendation.NEEDS_MORE_DATA
    if is_significant and direction_good is True:
        return Recommendation.ADOPT_COMPARISON
    if is_significant and direction_good is False:
        return Recommendation.KEEP_BASELINE
    return Recommendation.INCONCLUSIVE


def overall_recommendation(
    per_treatment: Iterable[Recommendation],
    arm_sizes: Iterable[int],
    min_sample_size: int = DEFAULT_MIN_SAMPLE_SIZE,
) -> Recommendation:
    """Combine per-treatment recommendations (``arm_sizes`` = every arm, control included)."""
    recs = list(per_treatment)
    if any(n < min_sample_size for n in arm_sizes) or not recs:
        return Recommendation.NEEDS_MORE_DATA
    if Recommendation.ADOPT_COMPARISON in recs:
        return Recommendation.ADOPT_COMPARISON
    if all(r is Recommendation.KEEP_BASELINE for r in recs):
        return Recommendation.KEEP_BASELINE
    return Recommendation.INCONCLUSIVE
