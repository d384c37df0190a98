"""Lifecycle rules through HTTP: every illegal transition is a 409 with the current
status, locked fields stay locked, stale versions change nothing, and after every
mutation the config topic holds the configuration the API describes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from .conftest import ConfigTopic
from .factories import DEFINITION, assert_topic_matches, create_schema, create_variant, ok, unique

pytestmark = pytest.mark.integration

ACTIONS = ("start", "pause", "resume", "complete", "cancel")
ALLOWED = {
    "draft": {"start", "cancel"},
    "running": {"pause", "complete", "cancel"},
    "paused": {"resume", "complete", "cancel"},
    "completed": set(),
    "cancelled": set(),
}


async def _experiment(
    client: httpx.AsyncClient, sid: str, arms: list[dict[str, Any]], **over: Any
) -> dict[str, Any]:
    body = {
        "experiment_key": unique("exp"),
        "experiment_name": "Test",
        "schema_id": sid,
        "variants": arms,
        **over,
    }
    return await ok(await client.post("/api/v1/experiments", json=body), 201)


async def _setup(client: httpx.AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    schema = await create_schema(client)
    control = await create_variant(client, schema["id"], "control")
    treatment = await create_variant(
        client, schema["id"], "treatment", risk_config_override={"auto_approve_threshold": 0.1}
    )
    return schema["id"], control, treatment


def _arms(
    control: dict[str, Any], treatment: dict[str, Any], a: float = 50, b: float = 50
) -> list[dict[str, Any]]:
    return [
        {"variant_id": control["id"], "is_control": True, "traffic_percentage": a},
        {"variant_id": treatment["id"], "traffic_percentage": b},
    ]


async def _act(client: httpx.AsyncClient, eid: str, action: str) -> httpx.Response:
    return await client.post(f"/api/v1/experiments/{eid}/{action}")


async def _illegal_from(client: httpx.AsyncClient, eid: str, status: str) -> None:
    for action in ACTIONS:
        if action in ALLOWED[status]:
            continue
        r = await _act(client, eid, action)
        assert r.status_code == 409, (status, action, r.text)
        body = r.json()
        assert body["error"] == "illegal_transition" and body["current_status"] == status, body
    got = await ok(await client.get(f"/api/v1/experiments/{eid}"))
    assert got["status"] == status


async def test_every_illegal_experiment_transition_is_a_409(
    client: httpx.AsyncClient, config_topic: ConfigTopic
) -> None:
    sid, control, treatment = await _setup(client)
    e = await _experiment(client, sid, _arms(control, treatment))
    eid = e["id"]
    await _illegal_from(client, eid, "draft")
    await ok(await _act(client, eid, "start"))
    await assert_topic_matches(client, config_topic, sid)
    await _illegal_from(client, eid, "running")
    await ok(await _act(client, eid, "pause"))
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["experiment"] is None  # paused: units fall back to the rollout
    await _illegal_from(client, eid, "paused")
    await ok(await _act(client, eid, "resume"))
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["experiment"]["experiment_id"] == eid
    await ok(await _act(client, eid, "complete"))
    await assert_topic_matches(client, config_topic, sid)
    await _illegal_from(client, eid, "completed")

    other = await _experiment(client, sid, _arms(control, treatment))
    await ok(await _act(client, other["id"], "cancel"))
    await _illegal_from(client, other["id"], "cancelled")
    third = await _experiment(client, sid, _arms(control, treatment))
    await ok(await _act(client, third["id"], "start"))
    await ok(await _act(client, third["id"], "cancel"))
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["experiment"] is None


async def test_start_preconditions(client: httpx.AsyncClient) -> None:
    sid, control, treatment = await _setup(client)
    other_schema = await create_schema(client)
    foreign = await create_variant(client, other_schema["id"], "foreign")

    async def start_fails(
        arms: list[dict[str, Any]], code: str = "start_preconditions_failed", status: int = 422
    ) -> dict[str, Any]:
        e = await _experiment(client, sid, arms)
        r = await _act(client, e["id"], "start")
        assert r.status_code == status, r.text
        assert r.json()["error"] == code and r.json()["current_status"] == "draft"
        return r.json()

    one = await start_fails(_arms(control, treatment)[:1])
    assert any("at least 2" in p for p in one["problems"])
    no_control = [{**a, "is_control": False} for a in _arms(control, treatment)]
    assert any("exactly one control" in p for p in (await start_fails(no_control))["problems"])
    assert any(
        "sum to 100" in p
        for p in (await start_fails(_arms(control, treatment, 50, 40)))["problems"]
    )

    # a variant of another schema cannot even become an arm
    r = await client.post(
        "/api/v1/experiments",
        json={
            "experiment_key": unique("exp"),
            "experiment_name": "x",
            "schema_id": sid,
            "variants": [
                {"variant_id": foreign["id"], "is_control": True, "traffic_percentage": 100}
            ],
        },
    )
    assert r.status_code == 422 and r.json()["field"] == "variants.0.variant_id", r.text

    # one running experiment per schema
    running = await _experiment(client, sid, _arms(control, treatment))
    await ok(await _act(client, running["id"], "start"))
    body = await start_fails(
        _arms(control, treatment), code="experiment_already_running", status=409
    )
    assert body["running_experiment_id"] == running["id"]
    # a paused one blocks nothing, but cannot resume while another runs
    await ok(await _act(client, running["id"], "pause"))
    second = await _experiment(client, sid, _arms(control, treatment))
    await ok(await _act(client, second["id"], "start"))
    r = await _act(client, running["id"], "resume")
    assert r.status_code == 409 and r.json()["error"] == "experiment_already_running"


async def test_running_experiment_changes_only_descriptive_fields(
    client: httpx.AsyncClient, config_topic: ConfigTopic
) -> None:
    sid, control, treatment = await _setup(client)
    extra = await create_variant(client, sid, "extra")
    e = await _experiment(client, sid, _arms(control, treatment))
    eid = e["id"]
    # draft: everything may change, arms included (version bumps with the arms)
    patched = await ok(
        await client.patch(
            f"/api/v1/experiments/{eid}",
            json={"coverage": 0.5, "secondary_metrics": ["risk_score"]},
        )
    )
    assert patched["coverage"] == 0.5 and patched["version"] == e["version"] + 1
    added = await ok(
        await client.post(
            f"/api/v1/experiments/{eid}/variants",
            json={"variant_id": extra["id"], "traffic_percentage": 0},
        ),
        201,
    )
    assert [a["variant_key"] for a in added["variants"]] == ["control", "treatment", "extra"]
    assert added["version"] > patched["version"]
    removed = await ok(await client.delete(f"/api/v1/experiments/{eid}/variants/{extra['id']}"))
    assert [a["variant_key"] for a in removed["variants"]] == ["control", "treatment"]
    await ok(await _act(client, eid, "start"))
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["experiment"]["coverage"] == 0.5

    renamed = await ok(
        await client.patch(
            f"/api/v1/experiments/{eid}",
            json={"experiment_name": "Renamed", "hypothesis": "h", "description": "d"},
        )
    )
    assert renamed["experiment_name"] == "Renamed"
    for body in (
        {"coverage": 1.0},
        {"primary_metric": "risk_score"},
        {"secondary_metrics": []},
        {"min_sample_size": 5},
        {"hash_seed": "other"},
        {"variants": _arms(control, treatment, 60, 40)},
    ):
        r = await client.patch(f"/api/v1/experiments/{eid}", json=body)
        assert r.status_code == 409, (body, r.text)
        assert r.json()["error"] == "experiment_locked" and r.json()["current_status"] == "running"
    r = await client.post(
        f"/api/v1/experiments/{eid}/variants",
        json={"variant_id": extra["id"], "traffic_percentage": 0},
    )
    assert r.status_code == 409 and r.json()["current_status"] == "running"
    r = await client.delete(f"/api/v1/experiments/{eid}/variants/{treatment['id']}")
    assert r.status_code == 409
    # an arm's definition and status are pinned while the experiment is live
    r = await client.patch(
        f"/api/v1/versions/variants/{treatment['id']}", json={"risk_config_override": {}}
    )
    assert r.status_code == 409 and r.json()["error"] == "variant_in_experiment"
    r = await client.delete(f"/api/v1/versions/variants/{treatment['id']}")
    assert r.status_code == 409 and r.json()["error"] == "variant_in_experiment"
    await ok(await _act(client, eid, "pause"))
    r = await client.patch(f"/api/v1/experiments/{eid}", json={"coverage": 1.0})
    assert r.status_code == 409 and r.json()["current_status"] == "paused"
    final = await ok(await client.get(f"/api/v1/experiments/{eid}"))
    assert final["coverage"] == 0.5 and len(final["variants"]) == 2
    await assert_topic_matches(client, config_topic, sid)


async def test_variant_lifecycle_versions_and_config(
    client: httpx.AsyncClient, config_topic: ConfigTopic
) -> None:
    schema = await create_schema(client)
    sid = schema["id"]
    v = await create_variant(
        client,
        sid,
        "beta",
        traffic_allocation=30,
        config_overrides={"config": {"timeout_s": 30, "retries": 2}},
    )
    assert v["effective_definition"]["config"] == {"timeout_s": 30, "retries": 2}
    vid = v["id"]
    for action, status in (("pause", "draft"),):
        r = await client.post(f"/api/v1/versions/variants/{vid}/{action}")
        assert r.status_code == 409 and r.json()["current_status"] == status
    v = await ok(await client.post(f"/api/v1/versions/variants/{vid}/activate"))
    await assert_topic_matches(client, config_topic, sid)
    r = await client.post(f"/api/v1/versions/variants/{vid}/activate")
    assert r.status_code == 409 and r.json() == {
        **r.json(),
        "error": "illegal_transition",
        "current_status": "active",
    }

    # stale If-Match: 409 and nothing changed (no new version, no audit row, no config)
    history_before = (await ok(await client.get(f"/api/v1/schemas/{sid}/history")))["total"]
    r = await client.patch(
        f"/api/v1/versions/variants/{vid}",
        json={"traffic_allocation": 40},
        headers={"If-Match": f'"{v["version"] - 1}"'},
    )
    assert (
        r.status_code == 409
        and r.json()["error"] == "stale_version"
        and r.json()["current_version"] == v["version"]
    )
    r = await client.patch(
        f"/api/v1/versions/variants/{vid}",
        json={"traffic_allocation": 40, "version": v["version"] + 5},
    )
    assert r.status_code == 409
    same = await ok(await client.get(f"/api/v1/versions/variants/{vid}"))
    assert same["traffic_allocation"] == 30.0 and same["version"] == v["version"]
    assert (await ok(await client.get(f"/api/v1/schemas/{sid}/history")))["total"] == history_before

    # a fresh If-Match works; the ETag of a read is the version
    etag = (await client.get(f"/api/v1/versions/variants/{vid}")).headers["etag"]
    v = await ok(
        await client.patch(
            f"/api/v1/versions/variants/{vid}",
            json={"traffic_allocation": 40, "workflow_steps_override": [{"name": "only"}]},
            headers={"If-Match": etag},
        )
    )
    assert v["traffic_allocation"] == 40.0 and v["effective_definition"]["workflow_steps"] == [
        {"name": "only"}
    ]
    await assert_topic_matches(client, config_topic, sid)
    v = await ok(await client.post(f"/api/v1/versions/variants/{vid}/pause"))
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["variants"] == []
    archived = await ok(await client.delete(f"/api/v1/versions/variants/{vid}"))
    assert archived["status"] == "archived"
    assert (await ok(await client.delete(f"/api/v1/versions/variants/{vid}")))[
        "version"
    ] == archived["version"]
    for action in ("activate", "pause"):
        r = await client.post(f"/api/v1/versions/variants/{vid}/{action}")
        assert r.status_code == 409 and r.json()["current_status"] == "archived"
    assert (
        await client.patch(f"/api/v1/versions/variants/{vid}", json={"variant_name": "x"})
    ).status_code == 409


async def test_versions_diff_and_archive_tombstone(
    client: httpx.AsyncClient, config_topic: ConfigTopic
) -> None:
    schema = await create_schema(client)
    sid = schema["id"]
    v = await create_variant(client, sid, "pinned", base_version=1, traffic_allocation=10)
    await ok(await client.post(f"/api/v1/versions/variants/{v['id']}/activate"))
    new_def = {
        **DEFINITION,
        "risk_config": {"auto_approve_threshold": 0.25},
        "config": {"timeout_s": 60, "mode": "fast"},
    }
    r = await client.post(
        f"/api/v1/schemas/{sid}/versions",
        json={"definition": new_def, "version": schema["version"] + 3},
    )
    assert r.status_code == 409 and r.json()["error"] == "stale_version"
    published = await ok(
        await client.post(
            f"/api/v1/schemas/{sid}/versions", json={"definition": new_def, "change_summary": "v2"}
        ),
        201,
    )
    assert published["version_number"] == 2 and published["is_current"]
    cfg = await assert_topic_matches(client, config_topic, sid)
    assert cfg["base_version"] == 2 and cfg["base_definition"] == new_def
    assert cfg["variants"][0]["base_version"] == 1  # a variant stays on its base version
    versions = await ok(await client.get(f"/api/v1/schemas/{sid}/versions"))
    assert [x["version_number"] for x in versions["items"]] == [1, 2] and versions["total"] == 2
    assert (await ok(await client.get(f"/api/v1/schemas/{sid}/versions/1")))[
        "definition"
    ] == DEFINITION
    diff = await ok(await client.get(f"/api/v1/schemas/{sid}/diff", params={"from": 1, "to": 2}))
    assert {(c["op"], c["path"]) for c in diff["changes"]} == {
        ("changed", "/risk_config/auto_approve_threshold"),
        ("removed", "/risk_config/require_hitl_threshold"),
        ("added", "/config/mode"),
    }
    assert (await ok(await client.get(f"/api/v1/schemas/{sid}/diff")))["to_version"] == 2
    assert (
        await client.get(f"/api/v1/schemas/{sid}/diff", params={"from": 1, "to": 9})
    ).status_code == 404

    patched = await ok(
        await client.patch(
            f"/api/v1/schemas/{sid}",
            json={"name": "Renamed"},
            headers={
                "If-Match": f'"{(await ok(await client.get(f"/api/v1/schemas/{sid}")))["version"]}"'
            },
        )
    )
    assert patched["name"] == "Renamed"

    # archive: 409 while an experiment runs; then a tombstone
    c = await create_variant(client, sid, "c")
    e = await ok(
        await client.post(
            "/api/v1/experiments",
            json={
                "experiment_key": unique("exp"),
                "experiment_name": "x",
                "schema_id": sid,
                "variants": [
                    {"variant_id": c["id"], "is_control": True, "traffic_percentage": 50},
                    {"variant_id": v["id"], "traffic_percentage": 50},
                ],
            },
        ),
        201,
    )
    await ok(await client.post(f"/api/v1/experiments/{e['id']}/start"))
    r = await client.delete(f"/api/v1/schemas/{sid}")
    assert r.status_code == 409 and r.json()["error"] == "schema_in_use"
    await ok(await client.post(f"/api/v1/experiments/{e['id']}/complete"))
    archived = await ok(await client.delete(f"/api/v1/schemas/{sid}"))
    assert archived["status"] == "archived"
    await config_topic.wait_for(sid, lambda value: value is None)
    r = await client.post(
        "/api/v1/versions/variants", json={"schema_id": sid, "variant_key": "late"}
    )
    assert r.status_code == 409 and r.json()["error"] == "schema_archived"
