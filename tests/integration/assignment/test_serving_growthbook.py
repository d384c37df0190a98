"""The official GrowthBook SDK, loaded with GET /api/v1/sdk/payload, assigns 10,000
units exactly as POST /api/v1/assign does."""

from __future__ import annotations

import pytest
from growthbook import GrowthBook

from shared.assignment import BASE_VALUE
from tests.unit.serving.builders import config, experiment, three_arm, variant

from .helpers import publish, running, settings, unit_ids

pytestmark = pytest.mark.integration


async def test_growthbook_sdk_matches_the_service_on_10k_units(
    kafka_bootstrap: str, topics: str
) -> None:
    keys = ("control", "fast", "slow")
    orders = config(
        "orders",
        variants=[variant(k) for k in keys] + [variant("canary", 30), variant("beta", 15)],
        exp=experiment(keys, (0.5, 0.3, 0.2), 0.7, key="orders-exp", seed="s-2024"),
    )
    await publish(kafka_bootstrap, topics, orders, three_arm(0.4))
    units = (
        unit_ids(9_990, seed=3) + [f"ünï-{i}-用户" for i in range(5)] + [f"😀{i}" for i in range(5)]
    )
    async with running(settings(kafka_bootstrap, topics, exposures_enabled=False)) as replica:
        r = await replica.http.get("/api/v1/sdk/payload")
        assert r.status_code == 200
        payload = r.json()
        assert set(payload["features"]) == {"orders", "checkout"}
        gb = GrowthBook()
        gb.set_payload(payload)  # what an SDK fetching this endpoint ingests
        seen: dict[str, int] = {}
        try:
            for i, unit in enumerate(units):
                schema = "orders" if i % 2 == 0 else "checkout"
                doc = await replica.assign(schema, unit)
                gb.set_attributes({"id": unit})
                result = gb.eval_feature(schema)
                ours = (doc["variant_key"] or BASE_VALUE, doc["in_experiment"])
                sdk_in = (
                    result.experimentResult is not None and result.experimentResult.inExperiment
                )
                assert ours == (result.value, sdk_in), (schema, unit, doc, result.source)
                if sdk_in:
                    assert result.experimentResult is not None
                    assert result.experimentResult.bucket == doc["bucket"]
                seen[doc["reason"]] = seen.get(doc["reason"], 0) + 1
        finally:
            gb.destroy()
    assert set(seen) == {"experiment", "rollout", "default"}, seen
