"""Two-proportion z-test against statsmodels and scipy on generated 2×2 tables
(tiny n, p near 0 and 1, very unequal sizes)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from shared.stats import ProportionStats, compare_metric, two_proportion_test

pytestmark = pytest.mark.unit

N_TABLES = 1200
LEVELS = (0.8, 0.9, 0.95, 0.99)


def _tables() -> Iterator[tuple[int, int, int, int, float]]:
    """(x1, n1, x2, n2, confidence) with seeded sizes and rates."""
    rng = np.random.default_rng(99)
    for i in range(N_TABLES):
        case = i % 5
        if case == 0:  # tiny
            n1, n2 = (int(v) for v in rng.integers(2, 8, size=2))
            p1 = p2 = float(rng.uniform(0.05, 0.95))
        elif case == 1:  # p near 0
            n1, n2 = (int(v) for v in rng.integers(100, 200_000, size=2))
            p1, p2 = (float(v) for v in 10.0 ** rng.uniform(-5, -1.5, size=2))
        elif case == 2:  # p near 1
            n1, n2 = (int(v) for v in rng.integers(100, 200_000, size=2))
            p1, p2 = (1.0 - float(v) for v in 10.0 ** rng.uniform(-5, -1.5, size=2))
        elif case == 3:  # very unequal sizes
            n1, n2 = int(rng.integers(2, 30)), int(rng.integers(10_000, 1_000_000))
            p1 = p2 = float(rng.uniform(0.01, 0.99))
        else:  # typical, with or without an effect
            n1, n2 = (int(v) for v in rng.integers(50, 20_000, size=2))
            p1 = float(rng.uniform(0.01, 0.99))
            p2 = float(np.clip(p1 + rng.normal(0, 0.03), 0.001, 0.999))
        if rng.random() < 0.5:
            n1, n2, p1, p2 = n2, n1, p2, p1
        x1, x2 = int(rng.binomial(n1, p1)), int(rng.binomial(n2, p2))
        yield x1, n1, x2, n2, float(LEVELS[i % len(LEVELS)])


def test_z_test_matches_statsmodels_and_chi2() -> None:
    compared = degenerate = 0
    for x1, n1, x2, n2, level in _tables():
        res = two_proportion_test(ProportionStats(x1, n1), ProportionStats(x2, n2), level)
        ctx = (x1, n1, x2, n2)
        p1, p2 = x1 / n1, x2 / n2
        assert res.cohens_h is not None
        assert math.isclose(
            res.cohens_h, float(proportion_effectsize(p2, p1)), rel_tol=1e-9, abs_tol=1e-15
        )
        if x1 + x2 in (0, n1 + n2):
            assert res.error_code == "zero_variance", ctx
            assert res.p_value is None and res.statistic is None
            degenerate += 1
            continue
        assert res.error_code is None, ctx
        assert res.statistic is not None and res.p_value is not None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z_ref, p_ref = proportions_ztest([x2, x1], [n2, n1])
        assert math.isclose(res.statistic, float(z_ref), rel_tol=1e-9, abs_tol=1e-12), ctx
        chi2, p_chi, _, _ = sps.chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
        assert math.isclose(res.statistic**2, float(chi2), rel_tol=1e-9, abs_tol=1e-20), ctx
        if p_ref > 1e-300:
            assert math.isclose(res.p_value, float(p_ref), rel_tol=1e-9), ctx
            assert math.isclose(res.p_value, float(p_chi), rel_tol=1e-9), ctx
            compared += 1
        se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        half = float(sps.norm.ppf(1 - (1 - level) / 2)) * se
        assert res.ci_low is not None and res.ci_high is not None
        tol = 1e-12 * (abs(p2 - p1) + half + 1e-12)
        assert math.isclose(res.ci_low, p2 - p1 - half, rel_tol=1e-9, abs_tol=tol), ctx
        assert math.isclose(res.ci_high, p2 - p1 + half, rel_tol=1e-9, abs_tol=tol), ctx
    assert compared >= N_TABLES * 0.9
    assert degenerate > 0


def test_compare_metric_proportion_fields() -> None:
    r = compare_metric("success_rate", ProportionStats(480, 1000), ProportionStats(530, 1000))
    z_ref, p_ref = proportions_ztest([530, 480], [1000, 1000])
    assert r.kind == "proportion" and r.effect_size_name == "cohens_h"
    assert r.df is None
    assert r.statistic is not None and math.isclose(r.statistic, float(z_ref), rel_tol=1e-12)
    assert r.p_value is not None and math.isclose(r.p_value, float(p_ref), rel_tol=1e-12)
    assert r.baseline.mean == 0.48 and r.comparison.n == 1000
    assert r.direction_good is True
