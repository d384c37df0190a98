"""Bucket ranges and variation choice, mirroring GrowthBook's ``getBucketRanges`` and
``chooseVariation`` (``growthbook.core``) so that results are bit-identical.

Variant ``i`` owns ``[c_i, c_i + coverage * w_i)`` where ``c_i`` is the sum of the
weights before it, accumulated left to right in floating point exactly as the SDK
does. Lowering (or raising) the coverage therefore never moves a unit from one variant
to another: it only shrinks (or grows) each range from its fixed start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "WEIGHT_SUM_MAX",
    "WEIGHT_SUM_MIN",
    "bucket_ranges",
    "choose_variant",
    "equal_weights",
    "in_range",
    "normalized_weights",
]

# A weight vector whose sum falls outside [WEIGHT_SUM_MIN, WEIGHT_SUM_MAX] is replaced
# by equal weights, as the SDK does.
WEIGHT_SUM_MIN = 0.99
WEIGHT_SUM_MAX = 1.01


def equal_weights(num_variations: int) -> list[float]:
    """``num_variations`` equal weights (GrowthBook's ``getEqualWeights``)."""
    if num_variations < 1:
        return []
    return [1 / num_variations for _ in range(num_variations)]


def _is_valid_weight_vector(weights: Sequence[float], num_variations: int) -> bool:
    if len(weights) != num_variations:
        return False
    try:
        if not all(
            isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
            for w in weights
        ):
            return False
        return WEIGHT_SUM_MIN <= sum(weights) <= WEIGHT_SUM_MAX
    except OverflowError:
        return False


def normalized_weights(num_variations: int, weights: Sequence[float] | None) -> list[float]:
    """The weights bucketing uses: ``weights`` when valid (one finite, non-negative weight
    per variation, summing to 1 ± 0.01), equal weights otherwise."""
    if weights is not None and _is_valid_weight_vector(weights, num_variations):
        return list(weights)
    return equal_weights(num_variations)


def bucket_ranges(
    num_variations: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> tuple[tuple[float, float], ...]:
    """GrowthBook's ``getBucketRanges``: one half-open ``(start, end)`` per variation.

    ``coverage`` is clamped to [0, 1]; invalid ``weights`` become equal weights.
    """
    if coverage < 0:
        coverage = 0
    if coverage > 1:
        coverage = 1
    cumulative: float = 0
    ranges: list[tuple[float, float]] = []
    for w in normalized_weights(num_variations, weights):
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return tuple(ranges)


def in_range(bucket: float, range_: tuple[float, float]) -> bool:
    """``start <= bucket < end``."""
    return range_[0] <= bucket < range_[1]


def choose_variant(bucket: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the first range holding ``bucket``, or -1: the unit is not in the
    experiment (GrowthBook's ``chooseVariation``)."""
    for i, (start, end) in enumerate(ranges):
        if start <= bucket < end:
            return i
    return -1
