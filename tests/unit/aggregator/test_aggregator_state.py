"""Partial aggregates: additivity, merging, column round trips, time rules."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.aggregator.decoding import decode_execution
from services.aggregator.state import (
    Execution,
    PartialAggregate,
    PartitionState,
    aggregate,
    classify_time,
    hour_of,
    hour_start,
)
from tests.integration.aggregator.generator import make_stream

pytestmark = pytest.mark.unit


def _executions(n: int, seed: int = 3) -> list[tuple[int, Execution]]:
    stream = make_stream(n, seed=seed, bad_rate=0.0, duplicate_rate=0.0, too_late=0)
    out = []
    for r in stream.records:
        ex = decode_execution(r.value)
        assert isinstance(ex, Execution)
        out.append((r.partition, ex))
    return out


def _same(a: PartialAggregate, b: PartialAggregate) -> None:
    assert (a.total, a.successes, a.d_count, a.r_count) == (
        b.total,
        b.successes,
        b.d_count,
        b.r_count,
    )
    for x, y in [(a.d_sum, b.d_sum), (a.d_sq, b.d_sq), (a.r_sum, b.r_sum), (a.r_sq, b.r_sq)]:
        assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
    assert (a.d_min, a.d_max, a.r_min, a.r_max) == (b.d_min, b.d_max, b.r_min, b.r_max)
    assert a.sketch == b.sketch
    assert a.steps.keys() == b.steps.keys()
    for name in a.steps:
        sa, sb = a.steps[name], b.steps[name]
        assert sa[:2] == sb[:2]
        assert math.isclose(sa[2], sb[2], rel_tol=1e-12) and math.isclose(
            sa[3], sb[3], rel_tol=1e-12
        )


def test_aggregates_of_parts_merge_into_the_aggregate_of_the_whole() -> None:
    execs = _executions(3000)
    whole_v, whole_e = aggregate(execs)
    rng = random.Random(1)
    shuffled = execs[:]
    rng.shuffle(shuffled)
    chunks = [shuffled[i::5] for i in range(5)]
    merged_v: dict = {}
    merged_e: dict = {}
    for chunk in chunks:
        dv, de = aggregate(chunk)
        for target, delta in ((merged_v, dv), (merged_e, de)):
            for k, agg in delta.items():
                target.setdefault(k, PartialAggregate()).merge(agg)
    assert merged_v.keys() == whole_v.keys()
    assert merged_e.keys() == whole_e.keys()
    for k in whole_v:
        _same(merged_v[k], whole_v[k])
    for k in whole_e:
        _same(merged_e[k], whole_e[k])


def test_aggregate_counts_match_a_direct_recomputation() -> None:
    execs = _executions(2000, seed=5)
    dv, de = aggregate(execs)
    assert sum(a.total for a in dv.values()) == len(execs)
    with_arm = [ex for _, ex in execs if ex.experiment_id and ex.variant_id]
    assert sum(a.total for a in de.values()) == len(with_arm)
    for key, agg in dv.items():
        members = [
            ex
            for p, ex in execs
            if (ex.schema_id, ex.schema_version, ex.variant_id, ex.hour, p) == key
        ]
        assert agg.total == len(members)
        assert agg.successes == sum(ex.success for ex in members)
        assert math.isclose(agg.d_sum, math.fsum(ex.duration_ms for ex in members), rel_tol=1e-12)
        risks = [ex.risk_score for ex in members if ex.risk_score is not None]
        assert agg.r_count == len(risks)
        assert agg.d_min == min(ex.duration_ms for ex in members)
        assert agg.sketch.count == len(members)


def test_columns_round_trip() -> None:
    dv, _ = aggregate(_executions(500, seed=8))
    for agg in list(dv.values())[:20]:
        cols = agg.columns()
        assert cols["failed_executions"] == agg.total - agg.successes
        back = PartialAggregate.from_columns(cols)
        assert back == agg
        row = agg.row_values()
        assert list(row[:17]) == [cols[c] for c in list(cols)[:17]]
        assert orjson.loads(row[17]) == cols["step_metrics"]


def test_merging_an_empty_aggregate_changes_nothing_and_copy_is_independent() -> None:
    dv, _ = aggregate(_executions(300, seed=2))
    agg = next(iter(dv.values()))
    before = agg.copy()
    agg.merge(PartialAggregate())
    assert agg == before
    empty = PartialAggregate()
    empty.merge(agg)
    assert empty == agg
    before.add(True, 1.0, None, 0.5, [("x", True, 1.0)])
    assert before != agg


def test_hours_are_utc_and_exact_at_the_boundary() -> None:
    t = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert hour_start(hour_of(t)) == t
    assert hour_of(t - timedelta(microseconds=1)) == hour_of(t) - 1
    cet = datetime.fromisoformat("2026-03-29T03:30:00+02:00")
    assert hour_start(hour_of(cet)) == t


def test_lateness_and_future_rules() -> None:
    now = 1_000_000.0
    assert classify_time(now - 10, None, 3600, now, 60) is None  # no watermark yet
    assert classify_time(now - 4000, now, 3600, now, 60) == "too_late"
    assert classify_time(now - 3599, now, 3600, now, 60) is None
    assert classify_time(now + 61, None, 3600, now, 60) == "too_far_in_future"


def test_partition_cache_eviction() -> None:
    st = PartitionState(0, 10, None)
    assert st.read_offset == 10
    dv, de = aggregate([(0, ex) for _, ex in _executions(400, seed=4)])
    for i, (k, a) in enumerate(dv.items()):
        st.versions[k] = a
        st.touched[k] = i
    for k, a in de.items():
        st.experiments[k] = a
        st.touched[k] = 0
    hours = sorted({k[3] for k in dv})
    dropped = st.evict_before(hours[len(hours) // 2])
    assert dropped > 0
    assert all(k[3] >= hours[len(hours) // 2] for k in st.versions)
    st.evict_coldest(5)
    assert len(st.versions) + len(st.experiments) <= 5
    st.clear_cache()
    assert not st.versions and not st.touched
