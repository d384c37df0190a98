"""Sufficient statistics: addition, from_values, mean and variance."""

from __future__ import annotations

import functools
import math
import operator

import numpy as np
import pytest

from shared.stats import MeanStats, ProportionStats

pytestmark = pytest.mark.unit


def test_mean_stats_from_values_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    xs = rng.normal(120.0, 15.0, size=1000)
    s = MeanStats.from_values(xs)
    assert s.n == 1000
    assert math.isclose(s.mean or 0.0, float(np.mean(xs)), rel_tol=1e-12)
    assert math.isclose(s.variance or 0.0, float(np.var(xs, ddof=1)), rel_tol=1e-10)
    assert math.isclose(s.sd or 0.0, float(np.std(xs, ddof=1)), rel_tol=1e-10)


def test_mean_stats_add_equals_concatenation() -> None:
    rng = np.random.default_rng(8)
    parts = [rng.exponential(50.0, size=int(k)) for k in rng.integers(1, 40, size=24)]
    total = functools.reduce(operator.add, (MeanStats.from_values(p) for p in parts))
    whole = MeanStats.from_values(np.concatenate(parts))
    assert total.n == whole.n
    assert math.isclose(total.sum, whole.sum, rel_tol=1e-12)
    assert math.isclose(total.sum_sq, whole.sum_sq, rel_tol=1e-12)
    assert math.isclose(total.variance or 0.0, whole.variance or 0.0, rel_tol=1e-9)
    assert sum((MeanStats.from_values(p) for p in parts), MeanStats()) == total


def test_mean_stats_small_and_empty() -> None:
    assert MeanStats().mean is None
    assert MeanStats().variance is None
    one = MeanStats.from_values([4.0])
    assert one.mean == 4.0
    assert one.variance is None
    assert MeanStats.from_values([1.0, 3.0]).variance == 2.0


def test_mean_stats_constant_values_have_exactly_zero_variance() -> None:
    for c in (0.1, 1e-7, 3.3, 123456.789, -0.7):
        s = MeanStats.from_values([c] * 37)
        assert s.variance == 0.0, c


def test_mean_stats_tiny_negative_variance_is_clamped() -> None:
    s = MeanStats(n=3, sum=3.0, sum_sq=3.0 - 1e-15)
    assert s.variance == 0.0


def test_mean_stats_invalid() -> None:
    assert not MeanStats(n=2, sum=math.nan, sum_sq=1.0).is_valid
    assert MeanStats(n=2, sum=math.inf, sum_sq=1.0).mean is None
    assert not MeanStats(n=-1).is_valid


def test_proportion_stats() -> None:
    s = ProportionStats.from_values([True, False, 1, 0, 1])
    assert s == ProportionStats(3, 5)
    assert s.n == 5
    assert s.mean == s.rate == 0.6
    assert math.isclose(s.variance or 0.0, 0.24)
    assert ProportionStats(1, 4) + ProportionStats(2, 6) == ProportionStats(3, 10)
    assert ProportionStats().mean is None
    assert not ProportionStats(5, 3).is_valid
    assert ProportionStats(5, 3).mean is None


def test_to_dict_is_plain() -> None:
    assert MeanStats(2, 3.0, 5.0).to_dict() == {"n": 2, "sum": 3.0, "sum_sq": 5.0}
    assert ProportionStats(1, 2).to_dict() == {"successes": 1, "trials": 2}


def test_builtin_sum_starts_from_zero() -> None:
    rows = [MeanStats(2, 3.0, 5.0), MeanStats(1, 1.0, 1.0)]
    assert sum(rows) == MeanStats(3, 4.0, 6.0)
    assert sum([ProportionStats(1, 2), ProportionStats(0, 3)]) == ProportionStats(1, 5)
