"""shared.results: experiment analysis from aggregates (pure part) and JSON safety."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from services.analysis.comparisons import VersionComparisonRequest
from shared.results import (
    ArmAggregate,
    ArmRecord,
    ExperimentInputs,
    ExperimentRecord,
    MetricResult,
    analyze,
    winner_of,
)
from shared.stats import MeanStats, ProportionStats, compare_metric

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 5, 12, tzinfo=UTC)


def experiment(**kw: object) -> ExperimentRecord:
    base: dict[str, object] = dict(
        id=uuid4(), key="e", name="E", schema_id=uuid4(), status="running",
        primary_metric="success_rate", secondary_metrics=(), min_sample_size=100,
        confidence_level=0.95, significance_threshold=0.05, sequential_testing=False,
        sequential_tuning=5000.0, minimum_detectable_effect=None,
        started_at=NOW - timedelta(days=4), paused_at=None, ended_at=None,
        winning_variant_id=None, p_value=None, effect_size=None,
    )  # fmt: skip
    base.update(kw)
    return ExperimentRecord(**base)  # type: ignore[arg-type]


def agg(n: int, successes: int, mean: float = 400.0, sd: float = 100.0) -> ArmAggregate:
    s = mean * n
    ss = (sd * sd) * (n - 1) + s * s / n if n else 0.0
    return ArmAggregate(
        total_executions=n, successful_executions=successes, failed_executions=n - successes,
        duration_count=n, duration_sum=s, duration_sum_sq=ss,
        risk_count=n, risk_sum=0.3 * n, risk_sum_sq=(0.01 * (n - 1) + 0.09 * n) if n else 0.0,
    )  # fmt: skip


def arm(
    a: ArmAggregate, *, control: bool = False, pct: float = 50.0, units: int = 0, pos: int = 0
) -> ArmRecord:
    return ArmRecord(uuid4(), f"k{pos}", None, pos, control, pct, a, units)


def no_nan(obj: object) -> None:
    json.loads(json.dumps(obj, allow_nan=False))


def test_fixed_horizon_winner_and_progress_from_min_sample_size() -> None:
    c = arm(agg(2000, 1800), control=True, units=1000)
    t = arm(agg(2000, 1900), pos=1, units=1010)
    r = analyze(ExperimentInputs(experiment(), (c, t)), NOW)
    assert r.control_variant_id == c.variant_id and r.winner_variant_id == t.variant_id
    assert r.recommendation == "adopt_comparison" and r.srm is not None and not r.srm.is_mismatch
    assert r.progress.basis == "min_sample_size" and r.progress.progress_percent == 100.0
    assert r.progress.days_remaining == 0.0 and r.progress.projected_completion_at == NOW
    d = winner_of(r)
    assert d.winner_variant_id == t.variant_id and d.is_significant
    assert d.p_value == r.variant(t.variant_id).metrics["success_rate"].p_value_adjusted  # type: ignore[union-attr]
    no_nan(d.model_dump(mode="json"))


def test_projected_completion_at_the_current_rate() -> None:
    c = arm(agg(40, 36), control=True)
    t = arm(agg(50, 45), pos=1)
    r = analyze(ExperimentInputs(experiment(min_sample_size=100), (c, t)), NOW)
    # 40 per 4 days = 10/day in the slowest arm; 60 more needed
    assert r.progress.progress_percent == pytest.approx(40.0)
    assert r.progress.days_remaining == pytest.approx(6.0)
    assert r.progress.projected_completion_at == NOW + timedelta(days=6)
    assert r.recommendation == "needs_more_data" and r.winner_variant_id is None
    assert [v.completion_percent for v in r.variants] == [pytest.approx(40.0), pytest.approx(50.0)]


def test_paused_experiment_counts_days_until_the_pause_and_has_no_eta() -> None:
    e = experiment(status="paused", paused_at=NOW - timedelta(days=2))
    r = analyze(ExperimentInputs(e, (arm(agg(40, 36), control=True), arm(agg(40, 30), pos=1))), NOW)
    assert r.progress.days_elapsed == pytest.approx(2.0)
    assert r.progress.projected_completion_at is None


def test_degenerate_inputs_are_json_safe() -> None:
    e = experiment(minimum_detectable_effect=0.1, started_at=None, status="draft")
    arms = (arm(agg(0, 0), control=True, pct=0.0), arm(agg(1, 1), pos=1, pct=0.0))
    r = analyze(ExperimentInputs(e, arms), NOW)
    assert r.srm is not None and r.srm.error_code == "invalid_weights"
    assert r.progress.days_elapsed is None and r.recommendation == "needs_more_data"
    no_nan(r.model_dump(mode="json"))
    no_nan(winner_of(r).model_dump(mode="json"))
    json.loads(r.model_dump_json())


def test_missing_control_flag_uses_the_first_arm() -> None:
    a, b2 = arm(agg(200, 150)), arm(agg(200, 160), pos=1)
    r = analyze(ExperimentInputs(experiment(), (a, b2)), NOW)
    assert r.control_variant_id == a.variant_id and "no_control_arm_flagged" in r.warnings


def test_single_arm_is_not_enough() -> None:
    r = analyze(ExperimentInputs(experiment(), (arm(agg(10, 5), control=True),)), NOW)
    assert r.error_code == "not_enough_arms" and r.srm is None and winner_of(r).p_value is None


def test_metric_result_replaces_non_finite_numbers() -> None:
    m = MetricResult.of(
        compare_metric("execution_time", MeanStats(3, 3.0, 3.0), MeanStats(3, 3.0, 3.0))
    )
    assert m.error_code == "zero_variance" and m.p_value is None
    data = m.model_dump()
    data["difference"] = math.nan
    data["ci_low"] = math.inf
    bad = MetricResult.model_validate(data)
    assert bad.difference is None and bad.ci_low is None
    ok = MetricResult.of(
        compare_metric("success_rate", ProportionStats(0, 50), ProportionStats(0, 60))
    )
    no_nan(ok.model_dump(mode="json"))


def test_comparison_request_validation() -> None:
    sid = str(uuid4())
    r = VersionComparisonRequest.model_validate(
        {"schema_id": sid, "baseline_version": 1, "comparison_version": 2,
         "metrics": ["execution_time", "execution_time", "risk_score"]}
    )  # fmt: skip
    assert r.metric_list == ["execution_time", "risk_score"] and r.primary == "execution_time"
    assert VersionComparisonRequest.model_validate(
        {"schema_id": sid, "baseline_version": 1, "comparison_version": 2}
    ).metric_list == ["success_rate", "execution_time", "risk_score"]
    same = {"schema_id": sid, "baseline_version": 1, "comparison_version": 1}
    with pytest.raises(ValidationError):
        VersionComparisonRequest.model_validate(same)
    v = str(uuid4())
    assert VersionComparisonRequest.model_validate(
        {**same, "comparison_variant_id": v}
    ).comparison_variant_id == UUID(v)
