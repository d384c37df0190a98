"""analyze_experiment: Holm across treatments, SRM, recommendations, winner, progress."""

from __future__ import annotations

import json

import pytest

from shared.stats import (
    MeanStats,
    MetricStats,
    ProportionStats,
    Recommendation,
    analyze_experiment,
    compare_metric,
    holm_adjust,
)

pytestmark = pytest.mark.unit


def _times(mean: float, n: int) -> MeanStats:
    return MeanStats.from_values([mean - 10.0, mean, mean + 10.0] * (n // 3))


ARMS: dict[str, dict[str, MetricStats]] = {
    "control": {"success_rate": ProportionStats(800, 1000), "execution_time": _times(100, 999)},
    "t_good": {"success_rate": ProportionStats(860, 1000), "execution_time": _times(99, 999)},
    "t_best": {"success_rate": ProportionStats(880, 1000), "execution_time": _times(101, 999)},
    "t_flat": {"success_rate": ProportionStats(805, 1000), "execution_time": _times(100, 999)},
}


def test_holm_adjustment_per_metric() -> None:
    res = analyze_experiment(ARMS, "control", "success_rate")
    assert res.error_code is None
    names = ["t_good", "t_best", "t_flat"]
    for metric in ("success_rate", "execution_time"):
        raw = [
            compare_metric(metric, ARMS["control"][metric], ARMS[n][metric]).p_value for n in names
        ]
        adjusted = holm_adjust(raw)
        for name, p_raw, p_adj in zip(names, raw, adjusted, strict=True):
            r = res.treatments[name].metrics[metric]
            assert r.p_value == p_raw
            assert r.p_value_adjusted == pytest.approx(p_adj)
            assert r.is_significant == ((p_adj or 1.0) < 0.05)


def test_recommendations_and_winner() -> None:
    res = analyze_experiment(ARMS, "control", "success_rate", weights={a: 1.0 for a in ARMS})
    assert res.treatments["t_good"].recommendation is Recommendation.ADOPT_COMPARISON
    assert res.treatments["t_best"].recommendation is Recommendation.ADOPT_COMPARISON
    assert res.treatments["t_flat"].recommendation is Recommendation.INCONCLUSIVE
    assert res.recommendation is Recommendation.ADOPT_COMPARISON
    assert res.winner == "t_best"
    assert res.srm is not None and not res.srm.is_mismatch and res.warnings == ()
    json.dumps(res.to_dict(), allow_nan=False)


def test_lower_is_better_primary_winner() -> None:
    arms = {
        "c": {"execution_time": _times(100, 3000)},
        "a": {"execution_time": _times(98, 3000)},
        "b": {"execution_time": _times(95, 3000)},
        "d": {"execution_time": _times(103, 3000)},
    }
    res = analyze_experiment(arms, "c", "execution_time")
    assert res.winner == "b"
    assert res.treatments["d"].recommendation is Recommendation.KEEP_BASELINE


def test_keep_baseline_and_needs_more_data() -> None:
    worse = {
        "c": {"success_rate": ProportionStats(900, 1000)},
        "t": {"success_rate": ProportionStats(800, 1000)},
    }
    res = analyze_experiment(worse, "c", "success_rate")
    assert res.recommendation is Recommendation.KEEP_BASELINE and res.winner is None
    small = {
        "c": {"success_rate": ProportionStats(10, 50)},
        "t": {"success_rate": ProportionStats(45, 50)},
    }
    res = analyze_experiment(small, "c", "success_rate")
    assert res.treatments["t"].metrics["success_rate"].is_significant
    assert res.recommendation is Recommendation.NEEDS_MORE_DATA


def test_srm_flagged() -> None:
    arms = {
        "c": {"success_rate": ProportionStats(500, 5000)},
        "t": {"success_rate": ProportionStats(400, 4000)},
    }
    res = analyze_experiment(arms, "c", "success_rate", weights={"c": 0.5, "t": 0.5})
    assert res.srm is not None and res.srm.is_mismatch and res.srm.p_value is not None
    assert res.srm.p_value < 0.001
    assert res.warnings == ("sample_ratio_mismatch",)
    ok = analyze_experiment(arms, "c", "success_rate", weights={"c": 5, "t": 4})
    assert ok.srm is not None and not ok.srm.is_mismatch
    counts = analyze_experiment(arms, "c", "success_rate", unit_counts={"c": 100, "t": 100})
    assert counts.srm is not None and counts.srm.statistic == 0.0


def test_progress() -> None:
    arms = {
        "c": {"success_rate": ProportionStats(100, 1000)},
        "t": {"success_rate": ProportionStats(110, 960)},
    }
    res = analyze_experiment(
        arms, "c", "success_rate", minimum_detectable_effect=0.2, days_elapsed=4.0
    )
    assert res.progress is not None
    assert res.progress.required_n_per_arm == 3841
    assert res.progress.min_arm_n == 960
    assert res.progress.progress_percent == pytest.approx(100 * 960 / 3841)
    assert res.progress.days_remaining == pytest.approx((3841 - 960) / 240.0)
    no_rate = analyze_experiment(arms, "c", "success_rate", minimum_detectable_effect=0.2)
    assert no_rate.progress is not None and no_rate.progress.days_remaining is None
    cont = analyze_experiment(
        {"c": {"risk_score": _times(50, 300)}, "t": {"risk_score": _times(50, 300)}},
        "c", "risk_score", minimum_detectable_effect=1.0, mde_relative=False,
    )  # fmt: skip
    assert cont.progress is not None and cont.progress.required_n_per_arm is not None


def test_sequential_option_propagates() -> None:
    res = analyze_experiment(ARMS, "control", "success_rate", sequential=True, tuning=2000)
    r = res.treatments["t_best"].metrics["success_rate"]
    assert r.sequential and r.method == "sequential_proportion_difference"
