"""Hand-checkable golden numbers for compare_metric, the registry and recommendations."""

from __future__ import annotations

import json
import math

import pytest

from shared.stats import (
    DEFAULT_METRICS,
    Direction,
    MeanStats,
    MetricKind,
    MetricSpec,
    ProportionStats,
    Recommendation,
    compare_metric,
    is_improvement,
    overall_recommendation,
    recommend,
)

pytestmark = pytest.mark.unit


def test_welch_golden() -> None:
    # baseline 1..5 (mean 3, s² 2.5), comparison 2,4,..,10 (mean 6, s² 10)
    r = compare_metric(
        "execution_time",
        MeanStats.from_values([1, 2, 3, 4, 5]),
        MeanStats.from_values([2, 4, 6, 8, 10]),
    )
    assert r.difference == pytest.approx(3.0)
    assert r.statistic == pytest.approx(3 / math.sqrt(2.5))  # SE = √(2.5/5 + 10/5)
    assert r.df == pytest.approx(6.25 / 1.0625)  # (0.5 + 2)² / (0.5²/4 + 2²/4)
    assert r.p_value == pytest.approx(0.10753119493062728, rel=1e-9)  # scipy ttest_ind
    assert r.effect_size == pytest.approx(1.2)  # 3 / √((4·2.5 + 4·10)/8) = 3 / 2.5
    assert r.relative_lift == pytest.approx(1.0)
    assert r.baseline.mean == 3.0 and r.baseline.n == 5
    assert r.baseline.sd == pytest.approx(math.sqrt(2.5))
    assert not r.is_significant
    assert r.direction_good is False  # slower execution is worse
    assert r.error_code is None


def test_proportion_golden() -> None:
    r = compare_metric("success_rate", ProportionStats(50, 100), ProportionStats(60, 100))
    # pooled p = .55: z = .1 / √(.55·.45·.02)
    assert r.statistic == pytest.approx(0.1 / math.sqrt(0.55 * 0.45 * 0.02))
    assert r.p_value == pytest.approx(0.1552184896846841, rel=1e-9)
    # unpooled SE = √(.25/100 + .24/100) = .07
    assert r.ci_low == pytest.approx(0.1 - 1.959963984540054 * 0.07)
    assert r.ci_high == pytest.approx(0.1 + 1.959963984540054 * 0.07)
    assert r.effect_size == pytest.approx(2 * math.asin(math.sqrt(0.6)) - math.pi / 2)
    assert r.relative_lift == pytest.approx(0.2)
    assert r.lift_ci_low == pytest.approx(0.2 - 1.959963984540054 * math.sqrt(0.024))
    assert r.direction_good is True and not r.is_significant


def test_significant_improvement_and_regression() -> None:
    better = compare_metric("success_rate", ProportionStats(800, 1000), ProportionStats(880, 1000))
    assert better.is_significant and better.direction_good and better.is_improvement
    faster = compare_metric(
        "execution_time", MeanStats.from_values([100, 110, 120] * 50),
        MeanStats.from_values([90, 100, 110] * 50),
    )  # fmt: skip
    assert faster.is_significant and faster.direction_good is True
    riskier = compare_metric(
        "risk_score", MeanStats.from_values([0.1, 0.2, 0.3] * 50),
        MeanStats.from_values([0.2, 0.3, 0.4] * 50),
    )  # fmt: skip
    assert riskier.is_significant and riskier.direction_good is False


def test_registry_and_directions() -> None:
    assert DEFAULT_METRICS["success_rate"].kind is MetricKind.PROPORTION
    assert DEFAULT_METRICS["success_rate"].direction is Direction.HIGHER_IS_BETTER
    assert DEFAULT_METRICS["execution_time"].direction is Direction.LOWER_IS_BETTER
    assert DEFAULT_METRICS["risk_score"].kind is MetricKind.CONTINUOUS
    assert is_improvement(Direction.LOWER_IS_BETTER, -1.0) is True
    assert is_improvement(Direction.HIGHER_IS_BETTER, -1.0) is False
    assert is_improvement(None, 1.0) is None
    assert is_improvement(Direction.HIGHER_IS_BETTER, 0.0) is None
    unknown = compare_metric("clicks", ProportionStats(1, 10), ProportionStats(2, 10))
    assert unknown.kind is MetricKind.PROPORTION and unknown.direction is None
    assert unknown.direction_good is None
    custom = {"cost": MetricSpec("cost", MetricKind.CONTINUOUS, Direction.LOWER_IS_BETTER)}
    r = compare_metric(
        "cost", MeanStats.from_values([1, 2, 3]), MeanStats.from_values([0, 1, 2]),
        registry=custom,
    )  # fmt: skip
    assert r.direction is Direction.LOWER_IS_BETTER and r.direction_good is True


def test_confidence_level_changes_interval() -> None:
    b, c = ProportionStats(100, 1000), ProportionStats(130, 1000)
    r90 = compare_metric("success_rate", b, c, confidence_level=0.90)
    r99 = compare_metric("success_rate", b, c, confidence_level=0.99)
    assert (r99.ci_high or 0) - (r99.ci_low or 0) > (r90.ci_high or 0) - (r90.ci_low or 0)
    assert r90.p_value == r99.p_value
    assert r90.is_significant and not r99.is_significant


def test_recommendation_rule() -> None:
    assert recommend((99, 500), True, True) is Recommendation.NEEDS_MORE_DATA
    assert recommend((100, 500), True, True) is Recommendation.ADOPT_COMPARISON
    assert recommend((100, 500), True, False) is Recommendation.KEEP_BASELINE
    assert recommend((100, 500), False, True) is Recommendation.INCONCLUSIVE
    assert recommend((100, 500), True, None) is Recommendation.INCONCLUSIVE
    assert recommend((10, 10), True, True, min_sample_size=5) is Recommendation.ADOPT_COMPARISON
    recs = [Recommendation.KEEP_BASELINE, Recommendation.ADOPT_COMPARISON]
    assert overall_recommendation(recs, [200, 200, 200]) is Recommendation.ADOPT_COMPARISON
    assert overall_recommendation(recs, [200, 20, 200]) is Recommendation.NEEDS_MORE_DATA
    keep = [Recommendation.KEEP_BASELINE] * 2
    assert overall_recommendation(keep, [200] * 3) is Recommendation.KEEP_BASELINE
    mixed = [Recommendation.KEEP_BASELINE, Recommendation.INCONCLUSIVE]
    assert overall_recommendation(mixed, [200] * 3) is Recommendation.INCONCLUSIVE


def test_result_serialises() -> None:
    r = compare_metric("success_rate", ProportionStats(50, 100), ProportionStats(60, 100))
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["kind"] == "proportion" and d["direction"] == "higher_is_better"
    assert d["baseline"] == {"n": 100, "mean": 0.5, "sd": 0.5}
    assert set(d) >= {
        "metric", "kind", "baseline", "comparison", "difference", "ci_low", "ci_high",
        "relative_lift", "lift_ci_low", "lift_ci_high", "p_value", "statistic", "df",
        "effect_size", "effect_size_name", "is_significant", "direction_good", "error_code",
    }  # fmt: skip
