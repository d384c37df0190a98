"""The published configuration: ordering, effective definitions, exact weights."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.assignment.control.config_builder import arm_weight, assemble_config
from services.assignment.control.outbox import config_content
from shared.assignment.decision import CompiledSchema, decide

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BASE = {"workflow_steps": [{"name": "a"}], "risk_config": {"t": 0.3, "u": 0.8}, "config": {"x": 1}}
V2 = {"workflow_steps": [{"name": "b"}], "risk_config": {"t": 0.1}, "config": {}}


def _variant(
    key: str, pct: str, status: str = "active", base: int = 1, *, minute: int = 0, **over: Any
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "created_at": T0 + timedelta(minutes=minute),
        "variant_key": key,
        "variant_name": key.upper(),
        "base_version": base,
        "traffic_allocation": Decimal(pct),
        "status": status,
        "config_overrides": {},
        "workflow_steps_override": None,
        "risk_config_override": {},
        **over,
    }


def test_variants_in_creation_order_with_effective_definitions_and_arms_by_position() -> None:
    schema = {"id": uuid.uuid4(), "key": "s", "current_version": 2}
    b = _variant("b", "10", minute=1, risk_config_override={"t": 0.2, "u": None})
    a = _variant("a", "20", minute=2, base=2, config_overrides={"config": {"y": 2}})
    ctl = _variant("Z_ctl", "0", minute=3, status="draft", workflow_steps_override=[{"name": "z"}])
    experiment = {
        "id": uuid.uuid4(),
        "experiment_key": "e",
        "hash_seed": "seed",
        "coverage": Decimal("0.5"),
    }
    arms = [
        {
            "variant_id": b["id"],
            "variant_key": "b",
            "position": 3,
            "is_control": False,
            "traffic_percentage": Decimal("33.33"),
        },
        {
            "variant_id": ctl["id"],
            "variant_key": "Z_ctl",
            "position": 0,
            "is_control": True,
            "traffic_percentage": Decimal("33.33"),
        },
        {
            "variant_id": a["id"],
            "variant_key": "a",
            "position": 1,
            "is_control": False,
            "traffic_percentage": Decimal("33.34"),
        },
    ]
    cfg = assemble_config(
        schema=schema,
        definitions={1: BASE, 2: V2},
        variants=[b, ctl, a],
        experiment=experiment,
        arms=arms,
        revision=7,
    )
    assert cfg.revision == 7 and cfg.base_version == 2 and cfg.base_definition.model_dump() == V2
    assert [v.variant_key for v in cfg.variants] == ["b", "a", "Z_ctl"]  # creation order
    by_key = {v.variant_key: v for v in cfg.variants}
    assert by_key["b"].effective_definition.risk_config == {"t": 0.2}
    assert by_key["a"].effective_definition.config == {"y": 2}
    assert by_key["Z_ctl"].effective_definition.workflow_steps == [{"name": "z"}]
    assert by_key["Z_ctl"].status == "draft"
    assert (
        cfg.experiment is not None
        and cfg.experiment.seed == "seed"
        and cfg.experiment.coverage == 0.5
    )
    assert [a.variant_key for a in cfg.experiment.arms] == ["Z_ctl", "a", "b"]
    assert [a.weight for a in cfg.experiment.arms] == [33.33 / 100, 33.34 / 100, 33.33 / 100]
    CompiledSchema.from_config(cfg)  # the serving side accepts it


@pytest.mark.parametrize(
    "split",
    [
        ["50", "50"],
        ["33.33", "33.33", "33.34"],
        ["0.01", "99.99"],
        ["14.29"] * 6 + ["14.26"],
        ["10.1", "20.2", "30.3", "39.4"],
    ],
)
def test_weights_sum_to_one(split: list[str]) -> None:
    assert sum(Decimal(p) for p in split) == 100
    assert abs(sum(arm_weight(Decimal(p)) for p in split) - 1.0) <= 1e-9
    # bit-identical to PostgreSQL traffic_percentage::float8 / 100
    assert [arm_weight(Decimal(p)) for p in split] == [float(p) / 100 for p in split]


def test_config_content_ignores_revision_and_time() -> None:
    assert config_content({"revision": 1, "published_at": "t", "x": 1}) == {"x": 1}


def test_a_new_variant_takes_its_share_from_the_base_version_only() -> None:
    """Rollout ranges in creation order: activating a variant whose key sorts first moves
    no unit between the existing variants."""
    schema = {"id": uuid.uuid4(), "key": "s", "current_version": 1}
    old = [_variant("m", "20", minute=1), _variant("n", "30", minute=2)]
    new = _variant("a-new", "10", minute=3)  # sorts before the others by key

    def config(variants: list[dict[str, Any]]) -> CompiledSchema:
        cfg = assemble_config(
            schema=schema, definitions={1: BASE}, variants=variants, experiment=None, arms=[],
            revision=1,
        )  # fmt: skip
        return CompiledSchema.from_config(cfg)

    before, after = config(old), config([new, *old])
    gained = 0
    for i in range(5000):
        was = decide(before, f"unit-{i}").variant_key
        now = decide(after, f"unit-{i}").variant_key
        if was != now:
            assert was is None and now == "a-new", (i, was, now)
            gained += 1
    assert 0.08 < gained / 5000 < 0.12  # about its 10% share, all from the base version
