"""Confidence sequences, relative lift (delta method) and sample-size formulas."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from shared.stats import (
    MeanStats,
    ProportionStats,
    compare_metric,
    confidence_sequence,
    lift_variance,
    progress_percent,
    projected_days_remaining,
    relative_lift,
    sample_size_means,
    sample_size_proportions,
    sequential_halfwidth,
    sequential_multiplier,
    sequential_p_value,
    sequential_rho,
)

pytestmark = pytest.mark.unit


# --- sequential -------------------------------------------------------------------------


def test_rho_golden() -> None:
    # ρ² = (−2 ln 0.05 + ln(−2 ln 0.05 + 1)) / 5000 = (5.991465 + 1.944694) / 5000
    assert sequential_rho(0.05, 5000) == pytest.approx(math.sqrt(7.936159 / 5000), rel=1e-6)
    assert sequential_rho(0.05, 5000) == pytest.approx(0.03984006677137368, rel=1e-12)


def test_halfwidth_matches_paper_formula() -> None:
    for alpha in (0.01, 0.05, 0.2):
        for tuning in (100.0, 5000.0, 1e6):
            rho = sequential_rho(alpha, tuning)
            for n in (2, 10, 1000, 5000, 10**6):
                se = 0.37
                sigma = se * math.sqrt(n)  # per-unit sd
                paper = sigma * math.sqrt(
                    2 * (n * rho**2 + 1) / (n**2 * rho**2)
                    * math.log(math.sqrt(n * rho**2 + 1) / alpha)
                )  # fmt: skip
                got = sequential_halfwidth(se, n, alpha, tuning)
                assert got == pytest.approx(paper, rel=1e-12)
                # always wider than the fixed-horizon normal interval
                assert got > float(sps.norm.ppf(1 - alpha / 2)) * se


def test_p_value_is_consistent_with_the_interval() -> None:
    rng = np.random.default_rng(2)
    for _ in range(2000):
        alpha = float(rng.choice([0.01, 0.05, 0.1]))
        n = int(rng.integers(2, 100_000))
        se = float(10 ** rng.uniform(-3, 1))
        est = float(rng.normal(0, 1)) * se * float(rng.uniform(0, 8))
        cs = confidence_sequence(est, se, n, 1 - alpha, 5000)
        assert cs.p_value is not None and cs.ci_low is not None and cs.ci_high is not None
        assert 0.0 <= cs.p_value <= 1.0
        excludes_zero = cs.ci_low > 0 or cs.ci_high < 0
        if abs(abs(est) - (cs.halfwidth or 0)) > 1e-9 * se:  # away from the boundary
            assert (cs.p_value < alpha) == excludes_zero
        # p is the α′ at which the sequence (same ρ) just touches 0
        if 1e-12 < cs.p_value < 1:
            m = sequential_multiplier(n, alpha, 5000)
            rho2 = sequential_rho(alpha, 5000) ** 2
            assert abs(est) / se == pytest.approx(
                math.sqrt(2 * (n * rho2 + 1) / (n * rho2)
                          * math.log(math.sqrt(n * rho2 + 1) / cs.p_value)), rel=1e-9,
            )  # fmt: skip
            assert m > 0


def test_sequential_p_value_golden_and_monotone() -> None:
    assert sequential_p_value(0.0, 1.0, 1000, 0.05) == 1.0
    ps = [sequential_p_value(z, 1.0, 4000, 0.05) for z in (1.0, 2.0, 3.0, 4.0, 5.0)]
    assert all(a >= b for a, b in itertools.pairwise(ps))
    n, rho2 = 4000, sequential_rho(0.05, 5000) ** 2
    expected = math.sqrt(n * rho2 + 1) * math.exp(-n * rho2 * 16 / (2 * (n * rho2 + 1)))
    assert ps[3] == pytest.approx(expected, rel=1e-12)


def test_compare_metric_sequential_is_wider_than_fixed() -> None:
    b, c = ProportionStats(1000, 10_000), ProportionStats(1100, 10_000)
    fixed = compare_metric("success_rate", b, c)
    seq = compare_metric("success_rate", b, c, sequential=True)
    assert seq.method == "sequential_proportion_difference" and seq.df is None
    assert seq.ci_low is not None and fixed.ci_low is not None
    assert seq.ci_low < fixed.ci_low and (seq.ci_high or 0) > (fixed.ci_high or 0)
    assert (seq.p_value or 0) > (fixed.p_value or 1)
    assert (seq.lift_ci_high or 0) - (seq.lift_ci_low or 0) > (fixed.lift_ci_high or 0) - (
        fixed.lift_ci_low or 0
    )
    mb, mc = MeanStats.from_values([1.0, 2.0, 3.0, 4.0]), MeanStats.from_values([2.0, 3, 4, 9])
    s = compare_metric("risk_score", mb, mc, sequential=True, tuning=100)
    assert s.method == "sequential_mean_difference" and s.error_code is None


# --- lift ------------------------------------------------------------------------------


def test_lift_delta_method_golden() -> None:
    # rates 0.5 → 0.6 with n = 100: Var = .24/(100·.25) + .36·.25/(100·.0625) = .024
    assert lift_variance(0.5, 0.25, 100, 0.6, 0.24, 100) == pytest.approx(0.024)
    r = relative_lift(0.5, 0.25, 100, 0.6, 0.24, 100, 1.959963984540054)
    assert r.lift == pytest.approx(0.2)
    assert r.std_error == pytest.approx(math.sqrt(0.024))
    assert r.ci_low == pytest.approx(0.2 - 1.959963984540054 * math.sqrt(0.024))
    assert r.error_code is None


def test_lift_matches_delta_method_simulation() -> None:
    rng = np.random.default_rng(4)
    m1, m2, s1, s2, n1, n2 = 10.0, 11.0, 3.0, 4.0, 400, 500
    means1 = rng.normal(m1, s1 / math.sqrt(n1), 200_000)
    means2 = rng.normal(m2, s2 / math.sqrt(n2), 200_000)
    sim_sd = float(np.std(means2 / means1 - 1))
    r = relative_lift(m1, s1**2, n1, m2, s2**2, n2, 1.96)
    assert r.std_error == pytest.approx(sim_sd, rel=0.01)


def test_lift_zero_baseline() -> None:
    r = relative_lift(0.0, 1.0, 10, 1.0, 1.0, 10, 1.96)
    assert r.error_code == "zero_baseline" and r.lift is None
    c = compare_metric(
        "risk_score", MeanStats.from_values([-1, 0, 1]), MeanStats.from_values([1, 2])
    )
    assert c.error_code == "zero_baseline"
    assert c.relative_lift is None and c.p_value is not None


# --- power -----------------------------------------------------------------------------


def test_sample_size_golden() -> None:
    # (1.959964·√(2·.11·.89) + 0.841621·√(.09 + .1056))² / .02² = 3840.8
    assert sample_size_proportions(0.10, 0.02).n_per_arm == 3841
    assert sample_size_proportions(0.10, 0.20, relative=True).n_per_arm == 3841
    assert sample_size_proportions(0.10, -0.02).n_per_arm is not None
    # 2·(1.959964 + 0.841621)²/0.1² = 1569.8
    assert sample_size_means(0.0, 1.0, 0.1).n_per_arm == 1570
    assert sample_size_means(200.0, 100.0, 0.05, relative=True).n_per_arm == 1570
    # 2·(2.575829 + 1.281552)²/0.1² = 2975.9
    assert sample_size_means(5.0, 1.0, 0.1, confidence_level=0.99, power=0.9).n_per_arm == 2976


def test_sample_size_errors() -> None:
    assert sample_size_proportions(0.0, 0.1).error_code == "invalid_input"
    assert sample_size_proportions(0.5, 0.0).error_code == "invalid_effect"
    assert sample_size_proportions(0.95, 0.1).error_code == "invalid_effect"
    assert sample_size_means(0.0, 1.0, 0.1, relative=True).error_code == "zero_baseline"
    assert sample_size_means(1.0, 0.0, 0.1).error_code == "invalid_input"
    assert sample_size_means(1.0, 1.0, 0.1, power=1.0).error_code == "invalid_input"


def test_progress_and_days() -> None:
    assert progress_percent([500, 250], 1000) == 25.0
    assert progress_percent(2000, 1000) == 100.0
    assert progress_percent([10], None) is None
    assert projected_days_remaining([500, 250], 1000, 50.0) == 15.0
    assert projected_days_remaining([500, 250], 1000, 0.0) is None
    assert projected_days_remaining([1500, 1200], 1000, 0.0) == 0.0
