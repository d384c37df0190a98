"""Bucket ranges and variant choice (GrowthBook getBucketRanges / chooseVariation)."""

from __future__ import annotations

import pytest
from growthbook import core as gb_core
from scipy.stats import chisquare

from shared.assignment import (
    bucket_ranges,
    choose_variant,
    equal_weights,
    gb_hash,
    in_range,
    make_hasher_v2,
)

pytestmark = pytest.mark.unit


def rounded(ranges: object) -> list[tuple[float, float]]:
    return [(round(a, 6), round(b, 6)) for a, b in ranges]  # type: ignore[attr-defined]


# GrowthBook's shared SDK spec (cases.json "getBucketRange")
BUCKET_RANGE_CASES = [
    ((2, 1, None), [(0, 0.5), (0.5, 1)]),
    ((2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ((2, 0, None), [(0, 0), (0.5, 0.5)]),
    ((4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
    ((3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ((3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ((2, -0.2, None), [(0, 0), (0.5, 0.5)]),
    ((2, 1.5, None), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
    ((2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
    ((4, 1, [0.4, 0.4, 0.2]), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ((2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
]


@pytest.mark.parametrize(("args", "expected"), BUCKET_RANGE_CASES)
def test_bucket_ranges_spec_cases(
    args: tuple[int, float, list[float] | None], expected: list[tuple[float, float]]
) -> None:
    ranges = bucket_ranges(*args)
    assert rounded(ranges) == rounded(expected)
    # bit-identical to the SDK, not just after rounding
    assert list(ranges) == gb_core.getBucketRanges(*args)


@pytest.mark.parametrize(
    ("weights", "coverage"),
    [
        ([0.5, 0.5], 0.5),
        ([0.5, 0.3, 0.2], 0.33),
        ([0.1, 0.9], 1.0),
        ([1 / 3, 1 / 3, 1 / 3], 0.77),
        ([0.1, 0.2, 0.3, 0.4], 0.123),
    ],
)
def test_bucket_ranges_bit_identical_to_sdk(weights: list[float], coverage: float) -> None:
    assert list(bucket_ranges(len(weights), coverage, weights)) == gb_core.getBucketRanges(
        len(weights), coverage, weights
    )


@pytest.mark.parametrize(
    ("bucket", "ranges", "expected"),
    [
        (0.2, [(0, 0.5), (0.5, 1)], 0),
        (0.6, [(0, 0.5), (0.5, 1)], 1),
        (0.0, [(0, 0.5), (0.5, 1)], 0),
        (0.5, [(0, 0.5), (0.5, 1)], 1),  # start inclusive, end exclusive
        (0.4, [(0, 0.25), (0.5, 0.75)], -1),  # outside coverage
        (0.25, [(0, 0.25), (0.5, 0.75)], -1),
        (0.8, [(0, 0.25), (0.5, 0.75)], -1),
        (0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)], 2),  # empty range is skipped
        (0.9999, [(0, 0.5), (0.5, 1)], 1),
    ],
)
def test_choose_variant(bucket: float, ranges: list[tuple[float, float]], expected: int) -> None:
    assert choose_variant(bucket, ranges) == expected
    assert gb_core.chooseVariation(bucket, ranges) == expected


def test_in_range_is_half_open() -> None:
    assert in_range(0.25, (0.25, 0.5))
    assert not in_range(0.5, (0.25, 0.5))


def test_equal_weights() -> None:
    assert equal_weights(0) == []
    assert equal_weights(1) == [1.0]
    assert equal_weights(4) == [0.25] * 4
    assert equal_weights(3) == gb_core.getEqualWeights(3)


def test_hand_checked_bucket() -> None:
    # gb_hash("seed", "a", 2) == 0.0505 (GrowthBook spec) lands in the first of
    # 50/30/20 at any coverage above 0.101; "b" (0.2696) lands in nothing at coverage
    # 0.5 (first range ends at 0.25) and in the first arm at coverage 1.
    ranges_half = bucket_ranges(3, 0.5, [0.5, 0.3, 0.2])
    ranges_full = bucket_ranges(3, 1.0, [0.5, 0.3, 0.2])
    a, b = gb_hash("seed", "a", 2), gb_hash("seed", "b", 2)
    assert a is not None and b is not None
    assert choose_variant(a, ranges_half) == 0
    assert choose_variant(b, ranges_half) == -1
    assert choose_variant(b, ranges_full) == 0
    assert ranges_half == ((0, 0.25), (0.5, 0.65), (0.8, 0.9))
    assert choose_variant(0.65, ranges_full) == 1  # [0.5, 0.8)
    assert choose_variant(0.6499, ranges_half) == 1
    assert choose_variant(0.65, ranges_half) == -1  # [0.5, 0.65): end exclusive
    assert choose_variant(0.8, ranges_half) == 2
    assert choose_variant(0.95, ranges_full) == 2


def test_raising_coverage_moves_no_unit_already_in_the_experiment() -> None:
    weights = [0.5, 0.3, 0.2]
    half = bucket_ranges(3, 0.5, weights)
    full = bucket_ranges(3, 1.0, weights)
    hasher = make_hasher_v2("coverage-seed")
    entered = 0
    for i in range(20_000):
        bucket = hasher(f"user-{i}")
        before, after = choose_variant(bucket, half), choose_variant(bucket, full)
        assert after != -1
        if before != -1:
            entered += 1
            assert after == before
    assert 0.45 < entered / 20_000 < 0.55


def test_distribution_50_30_20() -> None:
    n = 100_000
    weights = [0.5, 0.3, 0.2]
    ranges = bucket_ranges(3, 1.0, weights)
    hasher = make_hasher_v2("distribution-seed")
    counts = [0, 0, 0]
    for i in range(n):
        idx = choose_variant(hasher(f"unit-{i}"), ranges)
        counts[idx] += 1
    for count, w in zip(counts, weights, strict=True):
        assert abs(count / n - w) <= 0.01
    result = chisquare(counts, [w * n for w in weights])
    assert result.pvalue > 0.001
