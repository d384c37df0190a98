"""The compiled decision table: selection order, determinism, random draws."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest

from shared.assignment import CompiledSchema, Decision, decide, gb_hash, rollout_seed
from tests.unit.assignment.assignment_builders import (
    BASE_DEFINITION,
    make_config,
    make_experiment,
    make_variant,
)

pytestmark = pytest.mark.unit


class ExplodingRng:
    def random(self) -> float:
        raise AssertionError("rng must not be used")


def units(n: int, prefix: str = "unit") -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_experiment_assignment() -> None:
    variants = [make_variant("control"), make_variant("treatment", base_version=3)]
    exp = make_experiment(["control", "treatment"], [0.5, 0.5], coverage=1.0)
    cfg = make_config(variants, exp)
    compiled = CompiledSchema.from_config(cfg)
    seen: Counter[str] = Counter()
    for unit in units(2000):
        d = decide(compiled, unit, ExplodingRng())
        assert d.reason == "experiment"
        assert d.in_experiment is True
        assert d.experiment_id == exp.experiment_id
        assert d.experiment_key == "exp-key"
        assert d.schema_id == cfg.schema_id
        assert d.bucket == gb_hash("exp-seed", unit, 2)
        variant = variants[0] if d.variant_key == "control" else variants[1]
        assert d.variant_id == variant.variant_id
        assert d.schema_version == variant.base_version
        assert d.definition is variant.effective_definition  # precomputed, not merged
        assert d.variant_key is not None
        seen[d.variant_key] += 1
    assert 900 < seen["control"] < 1100


def test_outside_coverage_falls_back_to_rollout_then_default() -> None:
    variants = [make_variant("a", 30), make_variant("b", 20)]
    exp = make_experiment(["a", "b"], [0.5, 0.5], coverage=0.2)
    cfg = make_config(variants, exp)
    compiled = CompiledSchema.from_config(cfg)
    reasons: Counter[str] = Counter()
    for unit in units(10_000):
        d = decide(compiled, unit)
        reasons[d.reason] += 1
        exp_bucket = gb_hash("exp-seed", unit, 2)
        roll_bucket = gb_hash("checkout:rollout", unit, 2)
        assert exp_bucket is not None and roll_bucket is not None
        in_exp = exp_bucket < 0.1 or 0.5 <= exp_bucket < 0.6
        if in_exp:
            assert d.reason == "experiment" and d.in_experiment
            assert d.bucket == exp_bucket
            continue
        assert not d.in_experiment and d.experiment_id is None and d.experiment_key is None
        assert d.bucket == roll_bucket
        if roll_bucket < 0.3:
            assert (d.reason, d.variant_key, d.schema_version) == ("rollout", "a", 2)
        elif roll_bucket < 0.5:
            assert (d.reason, d.variant_key) == ("rollout", "b")
        else:
            assert (d.reason, d.variant_key, d.variant_id) == ("default", None, None)
            assert d.schema_version == cfg.base_version
            assert d.definition is cfg.base_definition
    assert 1800 < reasons["experiment"] < 2200


def test_default_without_experiment_or_rollout() -> None:
    cfg = make_config([make_variant("idle", 0)])
    compiled = CompiledSchema.from_config(cfg)
    d = decide(compiled, "someone", ExplodingRng())
    assert d == Decision(
        schema_id=cfg.schema_id,
        schema_version=1,
        variant_id=None,
        variant_key=None,
        experiment_id=None,
        experiment_key=None,
        in_experiment=False,
        bucket=None,
        reason="default",
        definition=BASE_DEFINITION,
    )
    assert d.definition is cfg.base_definition


def test_default_outside_coverage_keeps_the_experiment_bucket() -> None:
    exp = make_experiment(["a", "b"], [0.5, 0.5], coverage=0.0)
    compiled = CompiledSchema.from_config(make_config([make_variant("a")], exp))
    d = decide(compiled, "u1")
    assert d.reason == "default" and not d.in_experiment
    assert d.bucket == gb_hash("exp-seed", "u1", 2)


def test_rollout_shares() -> None:
    cfg = make_config([make_variant("a", 10), make_variant("b", 25)])
    compiled = CompiledSchema.from_config(cfg)
    counts = Counter(decide(compiled, u).variant_key for u in units(20_000))
    assert abs(counts["a"] / 20_000 - 0.10) < 0.01
    assert abs(counts["b"] / 20_000 - 0.25) < 0.01
    assert abs(counts[None] / 20_000 - 0.65) < 0.015
    assert rollout_seed("checkout") == "checkout:rollout"


def test_rollout_skips_inactive_variants_and_truncates_above_100() -> None:
    cfg = make_config(
        [
            make_variant("paused", 50, status="paused"),
            make_variant("a", 70),
            make_variant("b", 60),
            make_variant("c", 10),
        ]
    )
    compiled = CompiledSchema.from_config(cfg)
    assert compiled.rollout_ranges == ((0.0, 0.7), (0.7, 1.0))
    counts = Counter(decide(compiled, u).variant_key for u in units(5000))
    assert set(counts) == {"a", "b"}


def test_arm_of_missing_variant_uses_the_base_definition() -> None:
    # "gone" is referenced by an arm but absent from cfg.variants (e.g. paused)
    variants = [make_variant("control")]
    exp = make_experiment(["control", "gone"], [0.5, 0.5])
    cfg = make_config(variants, exp)
    compiled = CompiledSchema.from_config(cfg)
    decisions = [decide(compiled, u) for u in units(500)]
    gone = [d for d in decisions if d.variant_key == "gone"]
    assert gone
    for d in gone:
        assert d.variant_id == exp.arms[1].variant_id
        assert d.in_experiment and d.reason == "experiment"
        assert d.schema_version == cfg.base_version
        assert d.definition is cfg.base_definition


def test_listed_paused_variant_still_serves_its_experiment_arm() -> None:
    variants = [make_variant("control"), make_variant("t", 40, status="paused")]
    exp = make_experiment(["control", "t"], [0.5, 0.5])
    compiled = CompiledSchema.from_config(make_config(variants, exp))
    d = next(d for u in units(100) if (d := decide(compiled, u)).variant_key == "t")
    assert d.definition is variants[1].effective_definition
    assert compiled.rollout_table == ()


def test_empty_seed_falls_back_to_the_experiment_key() -> None:
    exp = make_experiment(["a", "b"], [0.5, 0.5], seed="")
    compiled = CompiledSchema.from_config(make_config([], exp))
    assert decide(compiled, "u7").bucket == gb_hash("exp-key", "u7", 2)


def test_determinism_across_calls_and_recompilation() -> None:
    variants = [make_variant("a", 20), make_variant("b"), make_variant("c")]
    exp = make_experiment(["b", "c"], [0.3, 0.7], coverage=0.6)
    cfg = make_config(variants, exp)
    first = CompiledSchema.from_config(cfg)
    second = CompiledSchema.from_config(cfg.model_copy(deep=True))
    for unit in units(3000):
        d1, d2, d3 = decide(first, unit), decide(first, unit), decide(second, unit)
        assert d1 == d2 == d3
        assert hash(d1) == hash(d3)


def test_random_assignment_over_experiment_arms() -> None:
    variants = [make_variant("a", 50), make_variant("b"), make_variant("c")]
    exp = make_experiment(["a", "b", "c"], [0.5, 0.3, 0.2], coverage=0.1)
    compiled = CompiledSchema.from_config(make_config(variants, exp))
    rng = random.Random(3)
    counts: Counter[str | None] = Counter()
    for i in range(20_000):
        d = decide(compiled, None if i % 2 else "", rng)
        assert d.reason == "random" and d.bucket is None and not d.in_experiment
        assert d.experiment_id == exp.experiment_id
        counts[d.variant_key] += 1
    for key, w in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        assert abs(counts[key] / 20_000 - w) < 0.015
    # reproducible with the same rng seed
    r1, r2 = random.Random(9), random.Random(9)
    assert [decide(compiled, None, r1) for _ in range(50)] == [
        decide(compiled, None, r2) for _ in range(50)
    ]


def test_random_assignment_over_rollout_shares() -> None:
    compiled = CompiledSchema.from_config(make_config([make_variant("a", 40)]))
    rng = random.Random(5)
    counts = Counter(decide(compiled, None, rng).variant_key for _ in range(10_000))
    assert abs(counts["a"] / 10_000 - 0.4) < 0.02
    d = next(d for _ in range(100) if (d := decide(compiled, None, rng)).variant_key is None)
    assert d.reason == "random" and d.definition is compiled.config.base_definition


def test_random_with_nothing_to_draw_is_the_default() -> None:
    compiled = CompiledSchema.from_config(make_config([make_variant("a", 0)]))
    d = decide(compiled, None, ExplodingRng())
    assert d.reason == "default" and d.variant_key is None and d.bucket is None


def test_random_top_of_range_rounding() -> None:
    class TopRng:
        def random(self) -> float:
            return 0.9999999999999999

    # 0.7 + 0.2 + 0.1 == 0.9999999999999999 in floating point: the draw is above it
    exp = make_experiment(["a", "b", "c", "never"], [0.7, 0.2, 0.1, 0.0])
    compiled = CompiledSchema.from_config(make_config([], exp))
    assert compiled.random_table[-1][0] <= TopRng().random()
    assert decide(compiled, None, TopRng()).variant_key == "c"


def test_decision_is_frozen_and_slotted() -> None:
    compiled = CompiledSchema.from_config(
        make_config([make_variant("a")], make_experiment(["a", "b"], [0.5, 0.5]))
    )
    d = decide(compiled, "u")
    assert not hasattr(d, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.bucket = 0.1  # type: ignore[misc]
    assert dataclasses.replace(d) == d
    assert "definition" not in repr(d)
