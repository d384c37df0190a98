"""The seed's usage examples, as API calls, down to the config the assignment service gets."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import KEYS

from .conftest import ConfigTopic
from .factories import DEFINITION, assert_topic_matches, create_schema, create_variant, ok

pytestmark = pytest.mark.integration

USER = {"X-Actor": "user123"}
# the audit actor: the key's principal, then on whose behalf (X-Actor)
ACTOR = f"{KEYS.principal('admin')} (user123)"


async def test_seed_variant_and_experiment_examples(
    client: httpx.AsyncClient, config_topic: ConfigTopic
) -> None:
    schema = await create_schema(client)
    sid = schema["id"]
    assert schema["current_version"] == 1 and schema["config_revision"] == 1
    first = await assert_topic_matches(client, config_topic, sid)
    assert (
        first["base_definition"] == DEFINITION
        and first["variants"] == []
        and first["experiment"] is None
    )

    # "Creating a Variant"
    treatment = await ok(
        await client.post(
            "/api/v1/versions/variants",
            headers=USER,
            json={
                "schema_id": sid,
                "base_version": 1,
                "variant_key": "treatment_a",
                "variant_name": "Stricter HITL",
                "risk_config_override": {
                    "auto_approve_threshold": 0.2,
                    "require_hitl_threshold": 0.75,
                },
                "traffic_allocation": 50,
            },
        ),
        201,
    )
    assert treatment["status"] == "draft" and treatment["traffic_allocation"] == 50.0
    assert treatment["created_by"] == ACTOR
    assert treatment["effective_definition"]["risk_config"] == {
        "auto_approve_threshold": 0.2,
        "require_hitl_threshold": 0.75,
    }
    assert treatment["effective_definition"]["workflow_steps"] == DEFINITION["workflow_steps"]
    control = await create_variant(client, sid, "control", traffic_allocation=50)

    # a draft variant is not in the config: nothing new was published
    assert (await ok(await client.get(f"/api/v1/schemas/{sid}")))["config_revision"] == 1

    activated = await ok(
        await client.post(f"/api/v1/versions/variants/{treatment['id']}/activate", headers=USER)
    )
    assert activated["status"] == "active" and activated["version"] == treatment["version"] + 1
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert [v["variant_key"] for v in cfg["variants"]] == ["treatment_a"]
    assert (
        cfg["variants"][0]["effective_definition"]["risk_config"]["require_hitl_threshold"] == 0.75
    )

    # "Creating an Experiment" + "Start the experiment"
    experiment = await ok(
        await client.post(
            "/api/v1/experiments/",
            headers=USER,
            json={
                "experiment_key": "hitl_test_2025",
                "experiment_name": "HITL Threshold Test",
                "schema_id": sid,
                "deliverable_type": "foundation_design",
                "primary_metric": "success_rate",
                "min_sample_size": 100,
                "variants": [
                    {"variant_id": control["id"], "is_control": True, "traffic_percentage": 50},
                    {"variant_id": treatment["id"], "is_control": False, "traffic_percentage": 50},
                ],
            },
        ),
        201,
    )
    assert experiment["status"] == "draft" and experiment["hash_seed"] == "hitl_test_2025"
    assert experiment["coverage"] == 1.0 and experiment["confidence_level"] == 0.95
    assert [(a["variant_key"], a["is_control"], a["weight"]) for a in experiment["variants"]] == [
        ("control", True, 0.5),
        ("treatment_a", False, 0.5),
    ]
    started = await ok(
        await client.post(f"/api/v1/experiments/{experiment['id']}/start", headers=USER)
    )
    assert started["status"] == "running" and started["started_at"] is not None

    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["experiment"]["experiment_key"] == "hitl_test_2025"
    assert cfg["experiment"]["seed"] == "hitl_test_2025" and cfg["experiment"]["coverage"] == 1.0
    assert [
        (a["variant_key"], a["weight"], a["is_control"]) for a in cfg["experiment"]["arms"]
    ] == [
        ("control", 0.5, True),
        ("treatment_a", 0.5, False),
    ]
    # the draft control arm is listed (with its status) so the arm runs its own definition;
    # variants in creation order (control was created with the experiment, after treatment_a)
    assert [(v["variant_key"], v["status"]) for v in cfg["variants"]] == [
        ("treatment_a", "active"),
        ("control", "draft"),
    ]

    listed = await ok(
        await client.get("/api/v1/experiments", params={"status": "running", "schema_id": sid})
    )
    assert [e["id"] for e in listed["items"]] == [experiment["id"]] and listed["total"] == 1
    stats = await ok(await client.get("/api/v1/versions/stats"))
    assert stats["running_experiments"] >= 1 and stats["variants_by_status"]["active"] >= 1

    # the history shows who did what, newest first
    history = await ok(await client.get(f"/api/v1/schemas/{sid}/history"))
    actions = [h["action"] for h in history["items"]]
    assert actions[:2] == ["experiment.start", "experiment.create"]
    assert "variant.activate" in actions and actions[-1] == "schema.create"
    assert {h["actor"] for h in history["items"]} == {ACTOR}
    activate = next(h for h in history["items"] if h["action"] == "variant.activate")
    assert {"op": "changed", "path": "/status", "old": "draft", "new": "active"} in activate[
        "changes"
    ]

    # complete: end time and status; the config loses its experiment
    done = await ok(
        await client.post(f"/api/v1/experiments/{experiment['id']}/complete", headers=USER)
    )
    assert done["status"] == "completed" and done["ended_at"] is not None
    # the analysis engine's verdict is recorded (no executions yet: no winner)
    assert done["winning_variant_id"] is None
    assert done["results"] is not None and done["results"]["recommendation"] == "needs_more_data"
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["experiment"] is None
