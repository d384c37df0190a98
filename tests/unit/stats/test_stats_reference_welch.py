"""Welch's t-test against scipy on generated data sets (sizes 2 to thousands, very unequal
variances and sizes)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from scipy import stats as sps

from shared.stats import MeanStats, compare_metric, welch_test

pytestmark = pytest.mark.unit

N_DATASETS = 1200
LEVELS = (0.8, 0.9, 0.95, 0.99)


def _datasets() -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """Seeded data sets of reasonable magnitude (|mean| ≤ 10·sd in each arm)."""
    rng = np.random.default_rng(20240611)
    for i in range(N_DATASETS):
        case = i % 6
        if case == 0:  # tiny samples
            n1, n2 = (int(v) for v in rng.integers(2, 4, size=2))
        elif case == 1:  # tiny vs large
            n1, n2 = int(rng.integers(2, 4)), int(rng.integers(50, 500))
        elif case == 2:  # moderate
            n1, n2 = (int(v) for v in rng.integers(5, 60, size=2))
        elif case == 3:  # large
            n1, n2 = (int(v) for v in rng.integers(200, 3000, size=2))
        elif case == 4:  # very unequal variances
            n1, n2 = (int(v) for v in rng.integers(10, 400, size=2))
        else:  # very unequal sizes
            n1, n2 = int(rng.integers(2, 12)), int(rng.integers(1000, 4000))
        if rng.random() < 0.5:
            n1, n2 = n2, n1
        sd1 = 10.0 ** rng.uniform(-2, 3)
        spread = 3.0 if case == 4 else 1.0
        sd2 = sd1 * 10.0 ** rng.uniform(-spread, spread)
        mu1 = rng.uniform(-10, 10) * sd1
        # half the data sets near the null, half with arbitrary effects
        mu2 = mu1 + rng.normal(0, 0.2) * sd1 if rng.random() < 0.5 else rng.uniform(-10, 10) * sd2
        dist = rng.integers(0, 3)
        if dist == 0:
            a, b = rng.normal(mu1, sd1, n1), rng.normal(mu2, sd2, n2)
        elif dist == 1:
            a = mu1 + sd1 * (rng.exponential(1.0, n1) - 1.0)
            b = mu2 + sd2 * (rng.exponential(1.0, n2) - 1.0)
        else:
            a, b = rng.uniform(-1, 1, n1) * sd1 + mu1, rng.uniform(-1, 1, n2) * sd2 + mu2
        yield a, b, float(LEVELS[i % len(LEVELS)])


def _close(x: float | None, ref: float, rel: float = 1e-9, abs_: float = 0.0) -> bool:
    return x is not None and math.isclose(x, ref, rel_tol=rel, abs_tol=abs_)


def test_welch_matches_scipy_on_generated_datasets() -> None:
    checked_p = 0
    for a, b, level in _datasets():
        base, comp = MeanStats.from_values(a), MeanStats.from_values(b)
        res = welch_test(base, comp, level)
        ref = sps.ttest_ind(b, a, equal_var=False)
        t_ref, p_ref, df_ref = float(ref.statistic), float(ref.pvalue), float(ref.df)
        scale = (abs(float(np.mean(a))) + abs(float(np.mean(b)))) / math.sqrt(
            float(np.var(a, ddof=1)) / len(a) + float(np.var(b, ddof=1)) / len(b)
        )
        ctx = (len(a), len(b), level)
        assert res.error_code is None, ctx
        # abs tolerance only for t ≈ 0, where the difference of means cancels
        assert _close(res.statistic, t_ref, abs_=1e-12 * scale), (ctx, res.statistic, t_ref)
        assert _close(res.df, df_ref), (ctx, res.df, df_ref)
        if p_ref > 1e-300:
            assert _close(res.p_value, p_ref), (ctx, res.p_value, p_ref)
            checked_p += 1
        # CI against the direct t-quantile formula
        se = math.sqrt(float(np.var(a, ddof=1)) / len(a) + float(np.var(b, ddof=1)) / len(b))
        diff = float(np.mean(b)) - float(np.mean(a))
        half = float(sps.t.ppf(1 - (1 - level) / 2, df_ref)) * se
        tol = 1e-9 * (abs(diff) + half) + 1e-12 * scale * se
        assert res.ci_low is not None and res.ci_high is not None
        assert math.isclose(res.ci_low, diff - half, rel_tol=1e-9, abs_tol=tol), ctx
        assert math.isclose(res.ci_high, diff + half, rel_tol=1e-9, abs_tol=tol), ctx
        assert res.std_error is not None and math.isclose(res.std_error, se, rel_tol=1e-9)
        # Cohen's d with the pooled SD
        sp = math.sqrt(
            ((len(a) - 1) * np.var(a, ddof=1) + (len(b) - 1) * np.var(b, ddof=1))
            / (len(a) + len(b) - 2)
        )
        assert _close(res.cohens_d, diff / sp, abs_=1e-12 * scale * se / sp), ctx
    assert checked_p >= N_DATASETS * 0.9


def test_compare_metric_continuous_uses_welch() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.gamma(2.0, 50.0, 300), rng.gamma(2.0, 45.0, 280)
    r = compare_metric("execution_time", MeanStats.from_values(a), MeanStats.from_values(b))
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert r.kind == "continuous"
    assert r.effect_size_name == "cohens_d"
    assert _close(r.statistic, float(ref.statistic))
    assert _close(r.p_value, float(ref.pvalue))
    assert _close(r.df, float(ref.df))
    ci = ref.confidence_interval(0.95)
    assert _close(r.ci_low, float(ci.low)) and _close(r.ci_high, float(ci.high))
