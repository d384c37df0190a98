"""Degenerate input never raises, sets an error code and stays JSON-safe."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from shared.stats import (
    MeanStats,
    MetricStats,
    ProportionStats,
    Recommendation,
    analyze_experiment,
    compare_metric,
    confidence_sequence,
    sample_size_means,
    sample_size_proportions,
    srm_check,
    two_proportion_test,
    welch_test,
)

pytestmark = pytest.mark.unit


def _assert_json_safe(obj: Any) -> None:
    text = json.dumps(obj, allow_nan=False)

    def walk(x: Any) -> None:
        if isinstance(x, float):
            assert math.isfinite(x)
        elif isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(json.loads(text))


M = MeanStats.from_values
CASES: list[tuple[str, MetricStats, MetricStats, str | None]] = [
    ("execution_time", MeanStats(), MeanStats(), "insufficient_data"),
    ("execution_time", M([1.0]), M([2.0]), "insufficient_data"),
    ("execution_time", M([1.0, 2.0]), M([2.0]), "insufficient_data"),
    ("execution_time", M([]), M([2.0, 3.0, 4.0]), "insufficient_data"),
    ("execution_time", M([5.0] * 3), M([5.0] * 4), "zero_variance"),
    ("execution_time", M([5.0] * 3), M([6.0] * 4), "zero_variance"),
    ("execution_time", M([0.1] * 50), M([0.1] * 70), "zero_variance"),
    ("execution_time", M([5.0] * 3), M([6.0, 7.0]), None),  # one constant arm is fine
    ("risk_score", M([-1.0, 0.0, 1.0]), M([1.0, 2.0, 3.0]), "zero_baseline"),
    ("risk_score", M([0.0, 0.0]), M([0.0, 0.0]), "zero_variance"),
    ("execution_time", MeanStats(3, math.nan, 1.0), M([1.0, 2.0]), "invalid_input"),
    ("execution_time", MeanStats(3, 1.0, math.inf), M([1.0, 2.0]), "invalid_input"),
    ("execution_time", MeanStats(-2, 1.0, 1.0), M([1.0, 2.0]), "invalid_input"),
    ("success_rate", ProportionStats(), ProportionStats(), "insufficient_data"),
    ("success_rate", ProportionStats(0, 1), ProportionStats(1, 1), "insufficient_data"),
    ("success_rate", ProportionStats(0, 100), ProportionStats(0, 100), "zero_variance"),
    ("success_rate", ProportionStats(100, 100), ProportionStats(100, 100), "zero_variance"),
    ("success_rate", ProportionStats(0, 100), ProportionStats(3, 100), "zero_baseline"),
    ("success_rate", ProportionStats(0, 100), ProportionStats(100, 100), "zero_baseline"),
    ("success_rate", ProportionStats(5, 3), ProportionStats(1, 3), "invalid_input"),
    ("success_rate", ProportionStats(-1, 3), ProportionStats(1, 3), "invalid_input"),
    ("success_rate", M([1.0, 2.0]), M([1.0, 2.0]), "stats_type_mismatch"),
    ("execution_time", ProportionStats(1, 2), ProportionStats(1, 2), "stats_type_mismatch"),
    ("unknown", ProportionStats(1, 2), M([1.0, 2.0]), "stats_type_mismatch"),
]


@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize(("metric", "base", "comp", "code"), CASES)
def test_compare_metric_degenerate(
    metric: str, base: MetricStats, comp: MetricStats, code: str | None, sequential: bool
) -> None:
    r = compare_metric(metric, base, comp, sequential=sequential)
    expected = code
    if sequential and metric == "success_rate" and base == ProportionStats(0, 100):
        # p = 0 and 1: unpooled SE is 0, so the confidence sequence is undefined
        expected = "zero_variance" if comp.mean == 1.0 else code
    assert r.error_code == expected
    if code is not None and code != "zero_baseline":
        assert not r.is_significant
    _assert_json_safe(r.to_dict())


def test_bad_confidence_and_tuning() -> None:
    b, c = ProportionStats(10, 100), ProportionStats(20, 100)
    for level in (0.0, 1.0, 1.5, math.nan):
        assert compare_metric("success_rate", b, c, confidence_level=level).error_code == (
            "invalid_input"
        )
        assert welch_test(M([1, 2]), M([1, 3]), level).error_code == "invalid_input"
        assert two_proportion_test(b, c, level).error_code == "invalid_input"
    for tuning in (0.0, -5.0, math.inf):
        r = compare_metric("success_rate", b, c, sequential=True, tuning=tuning)
        assert r.error_code == "invalid_input"
        _assert_json_safe(r.to_dict())
    cs = confidence_sequence(math.nan, 1.0, 100)
    assert cs.error_code == "insufficient_data"
    _assert_json_safe(cs.to_dict())


def test_extreme_but_valid_values_stay_finite() -> None:
    huge = compare_metric("execution_time", M([1e300, -1e300, 0.0]), M([1.0, 2.0, 3.0]))
    _assert_json_safe(huge.to_dict())
    sep = compare_metric("success_rate", ProportionStats(0, 10**9), ProportionStats(10**9, 10**9))
    assert sep.p_value == 0.0
    _assert_json_safe(sep.to_dict())


def test_srm_degenerate() -> None:
    for obs, w, code in [
        ([0, 0], None, "insufficient_data"),
        ([10], None, "invalid_input"),
        ([], None, "invalid_input"),
        ([-1, 5], None, "invalid_input"),
        ([10, 10], [1.0], "invalid_weights"),
        ([10, 10], [1.0, 0.0], "invalid_weights"),
        ([10, 10], [1.0, math.nan], "invalid_weights"),
    ]:
        r = srm_check(obs, w)
        assert r.error_code == code and not r.is_mismatch
        _assert_json_safe(r.to_dict())


def test_analyze_experiment_degenerate() -> None:
    r = analyze_experiment({"c": {}}, "c", "success_rate")
    assert r.error_code == "invalid_input"
    _assert_json_safe(r.to_dict())
    r = analyze_experiment({"t": {}}, "c", "success_rate")
    assert r.error_code == "invalid_input"
    empty = analyze_experiment(
        {"c": {}, "t": {}}, "c", "success_rate", minimum_detectable_effect=0.1, days_elapsed=0
    )
    assert empty.error_code is None
    assert empty.recommendation is Recommendation.NEEDS_MORE_DATA
    assert empty.treatments["t"].metrics["success_rate"].error_code == "insufficient_data"
    assert empty.srm is not None and empty.srm.error_code == "insufficient_data"
    assert empty.progress is not None and empty.progress.error_code == "insufficient_data"
    _assert_json_safe(empty.to_dict())
    partial = analyze_experiment(
        {"c": {"execution_time": M([1.0, 2.0, 3.0])}, "t": {"risk_score": M([1.0, 2.0])}},
        "c", "execution_time", weights={"c": 1.0},
    )  # fmt: skip
    assert partial.treatments["t"].metrics["risk_score"].error_code == "insufficient_data"
    assert partial.srm is not None and partial.srm.error_code == "invalid_weights"
    _assert_json_safe(partial.to_dict())
    zero_var = analyze_experiment(
        {"c": {"success_rate": ProportionStats(0, 500)},
         "t": {"success_rate": ProportionStats(0, 500)}},
        "c", "success_rate", minimum_detectable_effect=0.1,
    )  # fmt: skip
    assert zero_var.recommendation is Recommendation.INCONCLUSIVE
    assert zero_var.progress is not None and zero_var.progress.error_code == "invalid_input"
    _assert_json_safe(zero_var.to_dict())


def test_fuzz_extreme_magnitudes_never_raise() -> None:
    """Random sums from ±1e-320 to ±1e308, n from 0 to 1e9: no exception, JSON-safe."""
    rng = random.Random(1)

    def value() -> float:
        c = rng.random()
        if c < 0.2:
            return 0.0
        if c < 0.3:
            return rng.choice([5e-324, 1e-320, 1e-300, 1e300, 1e308, -1e308])
        return rng.choice([1.0, -1.0]) * 10 ** rng.uniform(-300, 300)

    sizes = [0, 1, 2, 3, 5, 100, 10**9]
    for _ in range(3000):
        n1, n2 = rng.choice(sizes), rng.choice(sizes)
        s1, s2 = value(), value()
        q1, q2 = abs(value()), abs(value())
        if rng.random() < 0.5:  # consistent sums of squares
            q1 = s1 * (s1 / max(n1, 1)) * (1 + rng.random())
            q2 = s2 * (s2 / max(n2, 1)) * (1 + rng.random())
        sequential = rng.random() < 0.5
        tuning = rng.choice([1e-300, 1.0, 5000.0, 1e300])
        r = compare_metric(
            "execution_time", MeanStats(n1, s1, q1), MeanStats(n2, s2, q2), 0.95, sequential,
            tuning,
        )  # fmt: skip
        _assert_json_safe(r.to_dict())
        x1 = rng.randint(0, n1) if n1 < 10**9 else n1 // 3
        x2 = rng.randint(0, n2) if n2 < 10**9 else 0
        p = compare_metric(
            "success_rate", ProportionStats(x1, n1), ProportionStats(x2, n2), 0.95, sequential,
            tuning,
        )  # fmt: skip
        _assert_json_safe(p.to_dict())
        _assert_json_safe(srm_check([n1, n2, x1], [abs(s1), abs(s2), 1.0]).to_dict())
        _assert_json_safe(sample_size_means(s1, abs(s2), value()).to_dict())
        _assert_json_safe(sample_size_proportions(rng.random(), value()).to_dict())
        _assert_json_safe(confidence_sequence(s1, abs(s2), n1, 0.95, tuning).to_dict())
    _assert_json_safe(MeanStats.from_values([1e308, 1e308, math.inf]).to_dict())
