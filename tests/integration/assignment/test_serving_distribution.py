"""Distribution: 100,000 unit ids through the HTTP batch endpoint into a 50/30/20
experiment (config read from the real config topic)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from scipy.stats import chisquare

from tests.unit.serving.builders import three_arm

from .helpers import publish, running, settings, unit_ids

pytestmark = pytest.mark.integration

N = 100_000
WEIGHTS = {"control": 0.5, "fast": 0.3, "slow": 0.2}


async def test_100k_units_split_50_30_20(kafka_bootstrap: str, topics: str) -> None:
    cfg = three_arm()
    await publish(kafka_bootstrap, topics, cfg)
    units = unit_ids(N, seed=2024)
    async with running(settings(kafka_bootstrap, topics, exposures_enabled=False)) as replica:
        t0 = time.perf_counter()
        docs = await replica.batch("checkout", units)
        elapsed = time.perf_counter() - t0
    assert len(docs) == N
    assert all(d["reason"] == "experiment" and d["in_experiment"] for d in docs)
    counts = Counter(d["variant_key"] for d in docs)
    assert set(counts) == set(WEIGHTS)
    for key, weight in WEIGHTS.items():
        share = counts[key] / N
        assert abs(share - weight) <= 0.01, (key, share)
    observed = [counts[k] for k in WEIGHTS]
    expected = [w * N for w in WEIGHTS.values()]
    p = chisquare(observed, expected).pvalue
    assert p > 0.001, (counts, p)
    print(f"\n100k units in {elapsed:.2f}s: {dict(counts)}, chi-squared p = {p:.3f}")
