"""Holm adjustment against statsmodels and the SRM check against scipy.stats.chisquare."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from shared.stats import holm_adjust, holm_reject, srm_check

pytestmark = pytest.mark.unit


def test_holm_matches_statsmodels(monkeypatch: pytest.MonkeyPatch) -> None:
    # multipletests(method="holm") calls gc.collect() on every call (~0.1 s each here)
    monkeypatch.setattr(gc, "collect", lambda generation=2: 0)
    rng = np.random.default_rng(5)
    for i in range(1500):
        m = int(rng.integers(1, 10))
        kind = i % 4
        if kind == 0:
            p = rng.uniform(0, 1, m)
        elif kind == 1:
            p = 10.0 ** rng.uniform(-20, 0, m)
        elif kind == 2:  # ties and exact ones
            p = rng.choice([0.001, 0.01, 0.02, 0.5, 1.0], m)
        else:
            p = rng.uniform(0, 0.08, m)
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        reject_ref, adj_ref, _, _ = multipletests(p, alpha=alpha, method="holm")
        adj = holm_adjust([float(v) for v in p])
        for got, ref in zip(adj, adj_ref, strict=True):
            assert got is not None and math.isclose(got, float(ref), rel_tol=1e-12), (p, adj)
        assert list(holm_reject([float(v) for v in p], alpha)) == [bool(r) for r in reject_ref]


def test_holm_golden_and_missing_values() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx((0.03, 0.06, 0.06))
    assert holm_adjust([0.01, None, 0.04]) == pytest.approx((0.02, None, 0.04))
    assert holm_adjust([]) == ()
    assert holm_adjust([0.9, 0.8]) == (1.0, 1.0)
    assert holm_reject([0.01, 0.04, 0.03], 0.05) == (True, False, False)


def test_srm_matches_scipy_chisquare() -> None:
    rng = np.random.default_rng(11)
    compared = 0
    for i in range(1200):
        k = int(rng.integers(2, 6))
        w = rng.uniform(0.05, 1.0, k) if i % 3 else np.ones(k)
        total = int(10 ** rng.uniform(1, 6))
        probs = w / w.sum()
        if i % 4 == 0:  # a real mismatch
            probs = probs * rng.uniform(0.8, 1.2, k)
            probs = probs / probs.sum()
        obs = rng.multinomial(total, probs)
        res = srm_check([int(o) for o in obs], [float(x) for x in w])
        expected = total * w / w.sum()
        ref = sps.chisquare(obs, f_exp=expected)
        assert res.error_code is None
        assert res.df == k - 1
        assert res.statistic is not None and res.p_value is not None
        assert math.isclose(res.statistic, float(ref.statistic), rel_tol=1e-9, abs_tol=1e-12)
        if ref.pvalue > 1e-300:
            assert math.isclose(res.p_value, float(ref.pvalue), rel_tol=1e-9, abs_tol=1e-15)
            compared += 1
        assert res.is_mismatch == (float(ref.pvalue) < 0.001)
    assert compared > 1000


def test_srm_golden() -> None:
    even = srm_check([500, 500])
    assert even.statistic == 0.0 and even.p_value == 1.0 and not even.is_mismatch
    skewed = srm_check([600, 400])
    assert skewed.statistic == pytest.approx(40.0)
    assert skewed.p_value == pytest.approx(2.5396285894708634e-10, rel=1e-9)
    assert skewed.is_mismatch
    assert not srm_check([600, 400], [0.6, 0.4]).is_mismatch
    assert srm_check([1030, 970]).p_value == pytest.approx(0.17971249487899976, rel=1e-9)
