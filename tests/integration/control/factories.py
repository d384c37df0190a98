"""Plain request factories and the expected configuration, built from API reads only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

DEFINITION: dict[str, Any] = {
    "workflow_steps": [{"name": "collect", "type": "task"}, {"name": "review", "type": "hitl"}],
    "risk_config": {"auto_approve_threshold": 0.3, "require_hitl_threshold": 0.8},
    "config": {"timeout_s": 60},
}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


async def create_schema(client: httpx.AsyncClient, **over: Any) -> dict[str, Any]:
    body = {
        "key": unique("schema"),
        "name": "Foundation design",
        "deliverable_type": "foundation_design",
        "definition": DEFINITION,
        **over,
    }
    return await ok(
        await client.post("/api/v1/schemas", json=body, headers={"X-Actor": "user123"}), 201
    )


async def create_variant(
    client: httpx.AsyncClient, schema_id: str, key: str, **over: Any
) -> dict[str, Any]:
    body = {"schema_id": schema_id, "variant_key": key, "variant_name": key.title(), **over}
    return await ok(
        await client.post("/api/v1/versions/variants", json=body, headers={"X-Actor": "user123"}),
        201,
    )


async def expected_config(client: httpx.AsyncClient, schema_id: str) -> dict[str, Any]:
    """The AssignmentConfig the topic must hold (without revision/published_at), from the API."""
    schema = await ok(await client.get(f"/api/v1/schemas/{schema_id}"))
    variants = (
        await ok(
            await client.get(
                "/api/v1/versions/variants", params={"schema_id": schema_id, "limit": 200}
            )
        )
    )["items"]
    running = (
        await ok(
            await client.get(
                "/api/v1/experiments", params={"schema_id": schema_id, "status": "running"}
            )
        )
    )["items"]
    experiment = running[0] if running else None
    arm_ids = {a["variant_id"] for a in experiment["variants"]} if experiment else set()
    listed = sorted(
        (v for v in variants if v["status"] == "active" or v["id"] in arm_ids),
        key=lambda v: (datetime.fromisoformat(v["created_at"]), uuid.UUID(v["id"])),
    )  # creation order, as the config builder lists them
    return {
        "config_version": 1,
        "schema_id": schema_id,
        "schema_key": schema["key"],
        "base_version": schema["current_version"],
        "base_definition": schema["definition"],
        "variants": [
            {
                "variant_id": v["id"],
                "variant_key": v["variant_key"],
                "variant_name": v["variant_name"],
                "base_version": v["base_version"],
                "traffic_allocation": v["traffic_allocation"],
                "status": v["status"],
                "effective_definition": v["effective_definition"],
            }
            for v in listed
        ],
        "experiment": None
        if experiment is None
        else {
            "experiment_id": experiment["id"],
            "experiment_key": experiment["experiment_key"],
            "seed": experiment["hash_seed"],
            "coverage": experiment["coverage"],
            "hash_version": 2,
            "status": "running",
            "arms": [
                {
                    "variant_id": a["variant_id"],
                    "variant_key": a["variant_key"],
                    "weight": float(a["traffic_percentage"]) / 100,
                    "is_control": a["is_control"],
                }
                for a in sorted(experiment["variants"], key=lambda a: a["position"])
            ],
        },
    }


def content(config: dict[str, Any] | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return {k: v for k, v in config.items() if k not in ("revision", "published_at")}


async def assert_topic_matches(
    client: httpx.AsyncClient, topic: Any, schema_id: str
) -> dict[str, Any]:
    """The topic's latest value for the schema = the configuration the API describes."""
    schema = await ok(await client.get(f"/api/v1/schemas/{schema_id}"))
    value = await topic.wait_revision(schema_id, schema["config_revision"])
    assert content(value) == await expected_config(client, schema_id)
    return value
