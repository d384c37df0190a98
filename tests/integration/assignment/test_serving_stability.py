"""Stability: the same unit gets the same variant across a restart and across two
replicas following the same topic; raising coverage moves no unit already in."""

from __future__ import annotations

import pytest

from shared.events import AssignmentConfig
from tests.unit.serving.builders import config, experiment, three_arm, variant

from .helpers import publish, running, settings, unit_ids

pytestmark = pytest.mark.integration

UNITS = unit_ids(10_000, seed=7)


def rich_config(revision: int = 1) -> AssignmentConfig:
    """An experiment at 60% coverage plus a rollout variant for the others."""
    keys = ("control", "fast", "slow")
    return config(
        "orders",
        revision=revision,
        variants=[variant(k, timeout_s=t) for k, t in zip(keys, (30, 10, 60), strict=True)]
        + [variant("canary", 25, timeout_s=20)],
        exp=experiment(keys, (0.5, 0.3, 0.2), 0.6, key="orders-exp", seed="orders-seed"),
    )


async def test_same_answers_across_replicas_and_restarts(kafka_bootstrap: str, topics: str) -> None:
    await publish(kafka_bootstrap, topics, rich_config())
    async with (
        running(settings(kafka_bootstrap, topics)) as a,
        running(settings(kafka_bootstrap, topics)) as b,
    ):
        first = await a.batch("orders", UNITS)
        assert await b.batch("orders", UNITS) == first
        assert a.serving.settings.replica_id != b.serving.settings.replica_id
    reasons = {d["reason"] for d in first}
    assert reasons == {"experiment", "rollout", "default"}
    # a restart: a new component reads the topic again
    async with running(settings(kafka_bootstrap, topics)) as again:
        assert await again.batch("orders", UNITS) == first
        # single requests agree with the batch
        for i in (0, 1, 2, 3, 9999):
            assert await again.assign("orders", UNITS[i]) == first[i]


async def test_raising_coverage_moves_no_unit_already_in(kafka_bootstrap: str, topics: str) -> None:
    await publish(kafka_bootstrap, topics, three_arm(0.5, revision=1))
    async with running(settings(kafka_bootstrap, topics)) as replica:
        before = await replica.batch("checkout", UNITS)
        assert {d["revision"] for d in before} == {1}
        await publish(kafka_bootstrap, topics, three_arm(1.0, revision=2))

        async def served() -> bool:
            return (await replica.assign("checkout", "probe"))["revision"] == 2

        from .helpers import eventually

        assert await eventually(served)
        after = await replica.batch("checkout", UNITS)
    inside = [(b, a) for b, a in zip(before, after, strict=True) if b["in_experiment"]]
    assert 0.47 < len(inside) / len(UNITS) < 0.53
    assert all(a["in_experiment"] for a in after)
    moved = [
        (b["variant_key"], a["variant_key"])
        for b, a in inside
        if b["variant_key"] != a["variant_key"]
    ]
    assert moved == []
    assert all(b["bucket"] == a["bucket"] for b, a in inside)
