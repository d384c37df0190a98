"""The exported SDK payload evaluates, in the official GrowthBook SDK, exactly like
``decide``."""

from __future__ import annotations

import uuid

import pytest
from growthbook import GrowthBook

from shared.assignment import (
    BASE_VALUE,
    CompiledSchema,
    decide,
    rollout_seed,
    sdk_feature,
    sdk_features,
    sdk_payload,
)
from shared.events import AssignmentConfig
from tests.unit.assignment.assignment_builders import make_config, make_experiment, make_variant

pytestmark = pytest.mark.unit

N_UNITS = 10_000


def unit_ids(n: int) -> list[str]:
    rng_ids = [str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15) % 2**128)) for i in range(n // 2)]
    plain = [f"user-{i}" for i in range(n - n // 2 - 20)]
    exotic = [f"ünï-{i}-用户" for i in range(10)] + [f"😀{i}" for i in range(10)]
    return rng_ids + plain + exotic


UNITS = unit_ids(N_UNITS)


def assert_equivalent(cfg: AssignmentConfig, units: list[str]) -> dict[str, int]:
    compiled = CompiledSchema.from_config(cfg)
    gb = GrowthBook(features=sdk_features([cfg]))
    outcomes = {"in": 0, "out": 0}
    try:
        for unit in units:
            d = decide(compiled, unit)
            gb.set_attributes({"id": unit})
            r = gb.eval_feature(cfg.schema_key)
            gb_in = r.experimentResult is not None and r.experimentResult.inExperiment
            ours = (d.variant_key if d.variant_key is not None else BASE_VALUE, d.in_experiment)
            assert ours == (r.value, gb_in), (unit, d, r.source)
            if gb_in:
                assert r.experimentResult is not None
                assert r.experimentResult.bucket == d.bucket
            expected_source = {
                "experiment": "experiment",
                "rollout": "force",
                "default": "defaultValue",
            }[d.reason]
            assert r.source == expected_source
            outcomes["in" if d.in_experiment else "out"] += 1
    finally:
        gb.destroy()
    return outcomes


SPLITS = {
    "50/50": [0.5, 0.5],
    "50/30/20": [0.5, 0.3, 0.2],
    "10/90": [0.1, 0.9],
}


@pytest.mark.parametrize("coverage", [0.5, 1.0, 0.33])
@pytest.mark.parametrize("split", list(SPLITS))
def test_sdk_equivalence(split: str, coverage: float) -> None:
    weights = SPLITS[split]
    keys = [f"arm{i}" for i in range(len(weights))]
    exp = make_experiment(keys, weights, coverage, seed=f"seed-{split}-{coverage}")
    cfg = make_config([make_variant(k) for k in keys], exp)
    outcomes = assert_equivalent(cfg, UNITS)
    assert abs(outcomes["in"] / N_UNITS - coverage) < 0.02
    if coverage < 1:
        assert outcomes["out"] > 0  # units outside coverage were compared too


def test_sdk_equivalence_with_rollout_paused_and_missing_arms() -> None:
    variants = [
        make_variant("a", 15),
        make_variant("b", 25),
        make_variant("zero", 0),
        make_variant("paused", 30, status="paused"),
    ]
    exp = make_experiment(["a", "paused", "gone"], [0.5, 0.3, 0.2], 0.33, seed="")
    cfg = make_config(variants, exp)
    assert_equivalent(cfg, UNITS)


def test_sdk_equivalence_rollout_only_and_plain_schema() -> None:
    assert_equivalent(make_config([make_variant("a", 35), make_variant("b", 65)]), UNITS[:3000])
    assert_equivalent(make_config([], schema_key="plain"), UNITS[:500])


def test_feature_shape() -> None:
    variants = [make_variant("control"), make_variant("treat", 20)]
    exp = make_experiment(["control", "treat"], [0.4, 0.6], 0.5, seed="s1", key="k1")
    feature = sdk_feature(make_config(variants, exp))
    assert feature["defaultValue"] == BASE_VALUE
    rule, rollout = feature["rules"]
    assert rule["key"] == "k1"
    assert rule["seed"] == "s1"
    assert rule["hashVersion"] == 2
    assert rule["hashAttribute"] == "id"
    assert rule["coverage"] == 0.5
    assert rule["weights"] == [0.4, 0.6]
    assert rule["variations"] == ["control", "treat"]
    assert rule["meta"] == [
        {"key": "control", "name": "Variant control"},
        {"key": "treat", "name": "Variant treat"},
    ]
    assert rollout["force"] == "treat"
    assert rollout["range"] == [0.0, 0.2]
    assert rollout["seed"] == rollout_seed("checkout")
    assert rollout["hashVersion"] == 2


def test_schema_without_experiment_is_just_the_base() -> None:
    assert sdk_feature(make_config([make_variant("idle")])) == {
        "defaultValue": BASE_VALUE,
        "rules": [],
    }


def test_payload_wraps_features_and_loads_with_set_payload() -> None:
    cfgs = [
        make_config([], make_experiment(["a", "b"], [0.5, 0.5]), schema_key="s1"),
        make_config([], schema_key="s2"),
    ]
    payload = sdk_payload(cfgs)
    assert set(payload["features"]) == {"s1", "s2"}
    assert payload["dateUpdated"] == max(c.published_at for c in cfgs).isoformat()
    gb = GrowthBook()
    try:
        gb.set_payload(payload)
        gb.set_attributes({"id": "u1"})
        assert gb.eval_feature("s2").value == BASE_VALUE
        assert gb.eval_feature("s1").value in {"a", "b"}
    finally:
        gb.destroy()
    assert sdk_payload([]) == {"features": {}}
