"""Calibration by simulation (seeded, vectorised on sufficient statistics).

* fixed-horizon A/A: false-positive rate within [4 %, 6 %] at α = 0.05;
* continuous monitoring (20 looks): the confidence sequence keeps the false-positive rate
  at or below α, while the fixed-horizon test looked at the same way is clearly inflated;
* A/B with an effect sized by the sample-size formula: power 80 % ± 3 points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shared.stats import (
    MeanStats,
    MetricStats,
    ProportionStats,
    compare_metric,
    sample_size_means,
    sample_size_proportions,
)

pytestmark = pytest.mark.unit

ALPHA = 0.05
N_SIMS = 4000
N_SEQ_SIMS = 3000
LOOKS = 20
BATCH = 100  # units per arm between looks


def _wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _normal_batches(
    rng: np.random.Generator, shape: tuple[int, ...], batch: int, mu: float, sd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (sum, sum of squares) of ``batch`` N(mu, sd²) draws per cell, without drawing
    them: the sum is N(b·mu, b·sd²) and independently Σ(x − x̄)² ~ sd²·χ²(b − 1)."""
    s = rng.normal(batch * mu, sd * math.sqrt(batch), shape)
    ssd = sd * sd * rng.chisquare(batch - 1, shape)
    return s, ssd + s * s / batch


def test_aa_fixed_horizon_proportions() -> None:
    rng = np.random.default_rng(101)
    n = 1000
    x = rng.binomial(n, 0.2, size=(N_SIMS, 2))
    hits = sum(
        compare_metric(
            "success_rate", ProportionStats(int(a), n), ProportionStats(int(b), n)
        ).is_significant
        for a, b in x
    )
    assert 0.04 <= hits / N_SIMS <= 0.06, hits / N_SIMS


def test_aa_fixed_horizon_continuous_skewed() -> None:
    rng = np.random.default_rng(102)
    n = 200
    data = rng.lognormal(4.0, 0.8, size=(N_SIMS, 2, n))  # execution times, right-skewed
    sums, sq = data.sum(axis=2), (data * data).sum(axis=2)
    hits = sum(
        compare_metric(
            "execution_time",
            MeanStats(n, float(sums[i, 0]), float(sq[i, 0])),
            MeanStats(n, float(sums[i, 1]), float(sq[i, 1])),
        ).is_significant
        for i in range(N_SIMS)
    )
    assert 0.04 <= hits / N_SIMS <= 0.06, hits / N_SIMS


Looks = list[tuple[MetricStats, MetricStats]]


def _monitor(experiments: list[Looks], metric: str) -> tuple[int, int]:
    """Experiments ever significant over their looks: (sequential, fixed-horizon)."""
    seq_hits = fixed_hits = 0
    for looks in experiments:
        seq = fixed = False
        for base, comp in looks:
            seq = seq or compare_metric(metric, base, comp, sequential=True).is_significant
            fixed = fixed or compare_metric(metric, base, comp).is_significant
            if seq and fixed:
                break
        seq_hits += seq
        fixed_hits += fixed
    return seq_hits, fixed_hits


def _check_monitoring(seq_hits: int, fixed_hits: int) -> None:
    seq_low, _ = _wilson(seq_hits, N_SEQ_SIMS)
    fixed_low, _ = _wilson(fixed_hits, N_SEQ_SIMS)
    assert seq_low <= ALPHA, seq_hits / N_SEQ_SIMS
    assert seq_hits / N_SEQ_SIMS <= ALPHA, seq_hits / N_SEQ_SIMS
    assert fixed_low > 2 * ALPHA, fixed_hits / N_SEQ_SIMS  # peeking inflates the error rate


def test_aa_continuous_monitoring_proportions() -> None:
    rng = np.random.default_rng(201)
    x = rng.binomial(BATCH, 0.1, size=(N_SEQ_SIMS, LOOKS, 2)).cumsum(axis=1)
    experiments: list[Looks] = [
        [
            (ProportionStats(int(x[e, k, 0]), BATCH * (k + 1)),
             ProportionStats(int(x[e, k, 1]), BATCH * (k + 1)))
            for k in range(LOOKS)
        ]
        for e in range(N_SEQ_SIMS)
    ]  # fmt: skip
    _check_monitoring(*_monitor(experiments, "success_rate"))


def test_aa_continuous_monitoring_means() -> None:
    rng = np.random.default_rng(202)
    s, sq = _normal_batches(rng, (N_SEQ_SIMS, LOOKS, 2), BATCH, 250.0, 80.0)
    s, sq = s.cumsum(axis=1), sq.cumsum(axis=1)
    experiments: list[Looks] = [
        [
            (MeanStats(BATCH * (k + 1), float(s[e, k, 0]), float(sq[e, k, 0])),
             MeanStats(BATCH * (k + 1), float(s[e, k, 1]), float(sq[e, k, 1])))
            for k in range(LOOKS)
        ]
        for e in range(N_SEQ_SIMS)
    ]  # fmt: skip
    _check_monitoring(*_monitor(experiments, "execution_time"))


def test_power_proportions() -> None:
    p1, rel = 0.2, 0.1
    n = sample_size_proportions(p1, rel, relative=True).n_per_arm
    assert n is not None
    rng = np.random.default_rng(301)
    xa = rng.binomial(n, p1, N_SIMS)
    xb = rng.binomial(n, p1 * (1 + rel), N_SIMS)
    hits = sum(
        compare_metric(
            "success_rate", ProportionStats(int(a), n), ProportionStats(int(b), n)
        ).is_significant
        for a, b in zip(xa, xb, strict=True)
    )
    assert 0.77 <= hits / N_SIMS <= 0.83, (n, hits / N_SIMS)


def test_power_means() -> None:
    mu, sd, mde = 120.0, 30.0, 6.0
    n = sample_size_means(mu, sd, mde).n_per_arm
    assert n is not None
    rng = np.random.default_rng(302)
    a = rng.normal(mu, sd, (N_SIMS, n))
    b = rng.normal(mu + mde, sd, (N_SIMS, n))
    hits = sum(
        compare_metric(
            "risk_score",
            MeanStats(n, float(a[i].sum()), float((a[i] * a[i]).sum())),
            MeanStats(n, float(b[i].sum()), float((b[i] * b[i]).sum())),
        ).is_significant
        for i in range(N_SIMS)
    )
    assert 0.77 <= hits / N_SIMS <= 0.83, (n, hits / N_SIMS)
