"""Bad input answers its 4xx (never a 5xx): unknown ids 404, malformed or out-of-range
bodies 422 naming the field, duplicates 409; database-level rules map the same way."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from services.assignment.control.pgerrors import translate
from shared.errors import ConflictError, NotFoundError, ValidationFailed

from .factories import DEFINITION, create_schema, create_variant, ok, unique

pytestmark = pytest.mark.integration

NOWHERE = str(uuid.uuid4())


@pytest.fixture
async def world(client: httpx.AsyncClient) -> dict[str, Any]:
    schema = await create_schema(client)
    sid = schema["id"]
    a = await create_variant(client, sid, "a", traffic_allocation=60)
    b = await create_variant(client, sid, "b", traffic_allocation=50)
    e = await ok(
        await client.post(
            "/api/v1/experiments",
            json={
                "experiment_key": unique("exp"),
                "experiment_name": "x",
                "schema_id": sid,
                "variants": [
                    {"variant_id": a["id"], "is_control": True, "traffic_percentage": 100}
                ],
            },
        ),
        201,
    )
    return {"schema": schema, "sid": sid, "a": a, "b": b, "e": e}


def _expect(
    r: httpx.Response, status: int, field: str | None = None, error: str | None = None
) -> None:
    assert r.status_code == status, (r.request.method, str(r.request.url), r.status_code, r.text)
    body = r.json()
    assert "error" in body and "message" in body, body
    if error is not None:
        assert body["error"] == error, body
    if field is not None:
        assert body.get("field") == field or field in body["message"], body


async def test_unknown_ids_are_404(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    sid, a, e = world["sid"], world["a"], world["e"]
    for method, url, body in [
        ("GET", f"/api/v1/schemas/{NOWHERE}", None),
        ("PATCH", f"/api/v1/schemas/{NOWHERE}", {"name": "x"}),
        ("DELETE", f"/api/v1/schemas/{NOWHERE}", None),
        ("GET", f"/api/v1/schemas/{NOWHERE}/versions", None),
        ("GET", f"/api/v1/schemas/{sid}/versions/7", None),
        ("POST", f"/api/v1/schemas/{NOWHERE}/versions", {"definition": DEFINITION}),
        ("GET", f"/api/v1/schemas/{NOWHERE}/diff", None),
        ("GET", f"/api/v1/schemas/{NOWHERE}/history", None),
        ("GET", f"/api/v1/versions/variants/{NOWHERE}", None),
        ("PATCH", f"/api/v1/versions/variants/{NOWHERE}", {"variant_name": "x"}),
        ("DELETE", f"/api/v1/versions/variants/{NOWHERE}", None),
        ("POST", f"/api/v1/versions/variants/{NOWHERE}/activate", None),
        ("POST", f"/api/v1/versions/variants/{NOWHERE}/pause", None),
        ("POST", "/api/v1/versions/variants", {"schema_id": NOWHERE, "variant_key": "x"}),
        (
            "POST",
            f"/api/v1/versions/schemas/{NOWHERE}/traffic-allocation",
            {"allocations": [{"variant_id": a["id"], "traffic_allocation": 1}]},
        ),
        (
            "POST",
            f"/api/v1/versions/schemas/{sid}/traffic-allocation",
            {"allocations": [{"variant_id": NOWHERE, "traffic_allocation": 1}]},
        ),
        ("GET", f"/api/v1/experiments/{NOWHERE}", None),
        ("PATCH", f"/api/v1/experiments/{NOWHERE}", {"experiment_name": "x"}),
        ("POST", f"/api/v1/experiments/{NOWHERE}/start", None),
        ("POST", f"/api/v1/experiments/{NOWHERE}/cancel", None),
        (
            "POST",
            f"/api/v1/experiments/{e['id']}/variants",
            {"variant_id": NOWHERE, "traffic_percentage": 1},
        ),
        ("DELETE", f"/api/v1/experiments/{e['id']}/variants/{NOWHERE}", None),
        (
            "POST",
            "/api/v1/experiments",
            {"experiment_key": unique("e"), "experiment_name": "x", "schema_id": NOWHERE},
        ),
        (
            "POST",
            "/api/v1/experiments",
            {
                "experiment_key": unique("e"),
                "experiment_name": "x",
                "schema_id": sid,
                "variants": [{"variant_id": NOWHERE, "traffic_percentage": 1}],
            },
        ),
    ]:
        _expect(await client.request(method, url, json=body), 404)


async def test_malformed_and_out_of_range_bodies_are_422(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    sid, a, e = world["sid"], world["a"], world["e"]
    base_schema = {"key": unique("s"), "name": "n", "definition": DEFINITION}
    base_variant = {"schema_id": sid, "variant_key": unique("v")}
    base_exp = {"experiment_key": unique("e"), "experiment_name": "x", "schema_id": sid}
    deep: Any = {}
    for _ in range(60):
        deep = {"x": deep}
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", "/api/v1/schemas", {**base_schema, "key": "Bad Key!"}, "key"),
        ("POST", "/api/v1/schemas", {**base_schema, "name": ""}, "name"),
        (
            "POST",
            "/api/v1/schemas",
            {**base_schema, "definition": {"workflow_steps": "no"}},
            "definition.workflow_steps",
        ),
        (
            "POST",
            "/api/v1/schemas",
            {**base_schema, "definition": {**DEFINITION, "extra": 1}},
            "definition.extra",
        ),
        ("POST", "/api/v1/schemas", {**base_schema, "unknown": 1}, "unknown"),
        (
            "POST",
            "/api/v1/schemas",
            {**base_schema, "definition": {**DEFINITION, "config": deep}},
            "definition",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "traffic_allocation": 101},
            "traffic_allocation",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "traffic_allocation": -1},
            "traffic_allocation",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "traffic_allocation": 33.333},
            "traffic_allocation",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "traffic_allocation": "lots"},
            "traffic_allocation",
        ),
        ("POST", "/api/v1/versions/variants", {**base_variant, "base_version": 9}, "base_version"),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "base_version": 2**40},
            "base_version",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "schema_id": "not-a-uuid"},
            "schema_id",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "config_overrides": {"bogus": 1}},
            "config_overrides",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "config_overrides": {"config": deep}},
            "config_overrides",
        ),
        (
            "POST",
            "/api/v1/versions/variants",
            {**base_variant, "workflow_steps_override": [1]},
            "workflow_steps_override.0",
        ),
        (
            "PATCH",
            f"/api/v1/versions/variants/{a['id']}",
            {"traffic_allocation": None},
            "traffic_allocation",
        ),
        ("PATCH", f"/api/v1/versions/variants/{a['id']}", {"variant_key": "rename"}, "variant_key"),
        (
            "POST",
            f"/api/v1/versions/schemas/{sid}/traffic-allocation",
            {"allocations": []},
            "allocations",
        ),
        (
            "POST",
            f"/api/v1/versions/schemas/{sid}/traffic-allocation",
            {
                "allocations": [
                    {"variant_id": a["id"], "traffic_allocation": 1},
                    {"variant_id": a["id"], "traffic_allocation": 2},
                ]
            },
            "allocations",
        ),
        ("POST", "/api/v1/experiments", {**base_exp, "confidence_level": 1.5}, "confidence_level"),
        ("POST", "/api/v1/experiments", {**base_exp, "coverage": -0.1}, "coverage"),
        (
            "POST",
            "/api/v1/experiments",
            {**base_exp, "primary_metric": "revenue"},
            "primary_metric",
        ),
        (
            "POST",
            "/api/v1/experiments",
            {**base_exp, "secondary_metrics": ["risk_score", "risk_score"]},
            "secondary_metrics",
        ),
        ("POST", "/api/v1/experiments", {**base_exp, "min_sample_size": 1}, "min_sample_size"),
        ("POST", "/api/v1/experiments", {**base_exp, "min_sample_size": 10**20}, "min_sample_size"),
        (
            "POST",
            "/api/v1/experiments",
            {**base_exp, "significance_threshold": 0},
            "significance_threshold",
        ),
        ("POST", "/api/v1/experiments", {**base_exp, "experiment_key": ""}, "experiment_key"),
        (
            "POST",
            "/api/v1/experiments",
            {
                **base_exp,
                "variants": [
                    {"variant_id": a["id"], "is_control": True, "traffic_percentage": 50},
                    {"variant_id": world["b"]["id"], "is_control": True, "traffic_percentage": 50},
                ],
            },
            "variants",
        ),
        ("PATCH", f"/api/v1/experiments/{e['id']}", {"experiment_name": None}, "experiment_name"),
        (
            "POST",
            f"/api/v1/experiments/{e['id']}/variants",
            {"variant_id": a["id"]},
            "traffic_percentage",
        ),
    ]
    for method, url, body, field in cases:
        r = await client.request(method, url, json=body)
        _expect(r, 422)
        assert field in r.text, (field, r.text)
    # not JSON, NaN, a non-UUID id (e.g. the analysis service's /statuses), a bad If-Match, page caps
    r = await client.post(
        "/api/v1/schemas", content=b"{not json", headers={"content-type": "application/json"}
    )
    _expect(r, 422)
    r = await client.post(
        "/api/v1/experiments",
        content=b'{"experiment_key": "k", "experiment_name": "x", "schema_id": "%s", "coverage": NaN}'
        % sid.encode(),
        headers={"content-type": "application/json"},
    )
    _expect(r, 422)
    _expect(await client.get("/api/v1/experiments/statuses"), 422)
    _expect(await client.get("/api/v1/versions/variants/123"), 422)
    _expect(
        await client.patch(
            f"/api/v1/versions/variants/{a['id']}",
            json={"variant_name": "x"},
            headers={"If-Match": "abc"},
        ),
        422,
        "If-Match",
    )
    _expect(await client.get("/api/v1/versions/variants", params={"limit": 201}), 422, "limit")
    _expect(await client.get("/api/v1/versions/variants", params={"limit": 0}), 422)
    _expect(await client.get("/api/v1/versions/variants", params={"status": "gone"}), 422)
    _expect(await client.get(f"/api/v1/schemas/{sid}/versions/0"), 422)
    _expect(await client.get(f"/api/v1/schemas/{sid}/diff", params={"from": "x"}), 422)
    page = await ok(
        await client.get(
            "/api/v1/versions/variants", params={"limit": 1, "offset": 1, "schema_id": sid}
        )
    )
    assert len(page["items"]) == 1 and page["total"] == 2 and page["limit"] == 1


async def test_duplicates_are_409(client: httpx.AsyncClient, world: dict[str, Any]) -> None:
    sid, a, e = world["sid"], world["a"], world["e"]
    r = await client.post(
        "/api/v1/schemas",
        json={"key": world["schema"]["key"], "name": "again", "definition": DEFINITION},
    )
    _expect(r, 409, "key", "duplicate_key")
    _expect(
        await client.post("/api/v1/versions/variants", json={"schema_id": sid, "variant_key": "a"}),
        409,
        "variant_key",
        "duplicate_key",
    )
    other = await create_schema(client)
    await create_variant(client, other["id"], "a")  # the same key in another schema is fine
    _expect(
        await client.post(
            "/api/v1/experiments",
            json={"experiment_key": e["experiment_key"], "experiment_name": "x", "schema_id": sid},
        ),
        409,
        "experiment_key",
        "duplicate_key",
    )
    _expect(
        await client.post(
            f"/api/v1/experiments/{e['id']}/variants",
            json={"variant_id": a["id"], "traffic_percentage": 0},
        ),
        409,
        None,
        "duplicate_arm",
    )
    _expect(
        await client.post(
            f"/api/v1/experiments/{e['id']}/variants",
            json={"variant_id": world["b"]["id"], "is_control": True, "traffic_percentage": 0},
        ),
        409,
        None,
        "control_already_set",
    )


async def test_traffic_over_100_is_422_naming_the_constraint(
    client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    sid, a, b = world["sid"], world["a"], world["b"]
    await ok(await client.post(f"/api/v1/versions/variants/{a['id']}/activate"))
    for r in (
        await client.post(f"/api/v1/versions/variants/{b['id']}/activate"),  # 60 + 50
        await client.patch(
            f"/api/v1/versions/variants/{a['id']}", json={"traffic_allocation": 100.01}
        ),
        await client.post(
            "/api/v1/versions/variants",
            json={"schema_id": sid, "variant_key": "c", "traffic_allocation": 100.5},
        ),
    ):
        assert r.status_code == 422, r.text
    await ok(
        await client.patch(f"/api/v1/versions/variants/{a['id']}", json={"traffic_allocation": 100})
    )
    await ok(
        await client.patch(f"/api/v1/versions/variants/{a['id']}", json={"traffic_allocation": 60})
    )
    r = await client.post(f"/api/v1/versions/variants/{b['id']}/activate")
    _expect(r, 422, "traffic_allocation", "traffic_allocation_exceeds_100")
    assert r.json()["constraint"] == "schema_variants_traffic_sum"
    # rebalancing both in one request is judged on the final state
    moved = await ok(
        await client.post(
            f"/api/v1/versions/schemas/{sid}/traffic-allocation",
            json={
                "allocations": [
                    {"variant_id": a["id"], "traffic_allocation": 40},
                    {"variant_id": b["id"], "traffic_allocation": 60},
                ]
            },
        )
    )
    assert moved["active_total"] == 40.0
    await ok(await client.post(f"/api/v1/versions/variants/{b['id']}/activate"))
    r = await client.post(
        f"/api/v1/versions/schemas/{sid}/traffic-allocation",
        json={"allocations": [{"variant_id": a["id"], "traffic_allocation": 41}]},
    )
    _expect(r, 422, "traffic_allocation", "traffic_allocation_exceeds_100")
    assert r.json()["constraint"] == "schema_variants_traffic_sum"
    swapped = await ok(
        await client.post(
            f"/api/v1/versions/schemas/{sid}/traffic-allocation",
            json={
                "allocations": [
                    {"variant_id": a["id"], "traffic_allocation": 60},
                    {"variant_id": b["id"], "traffic_allocation": 40},
                ]
            },
        )
    )
    assert swapped["active_total"] == 100.0
    stale = await client.post(
        f"/api/v1/versions/schemas/{sid}/traffic-allocation",
        json={"allocations": [{"variant_id": a["id"], "traffic_allocation": 10, "version": 1}]},
    )
    _expect(stale, 409, None, "stale_version")


async def test_database_rules_map_to_4xx(
    db_pool: asyncpg.Pool, client: httpx.AsyncClient, world: dict[str, Any]
) -> None:
    """The same rules hold for a writer that bypasses the API, and each database error
    the API could meet translates to its 4xx."""
    sid, e = world["sid"], world["e"]

    async def error_of(sql: str, *args: Any) -> Exception:
        async with db_pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(sql, *args)
            except asyncpg.PostgresError as exc:
                return translate(exc)
        raise AssertionError(f"no error from {sql}")

    exc = await error_of(
        "UPDATE schema_variants SET status = 'active' WHERE schema_id = $1", uuid.UUID(sid)
    )
    assert isinstance(exc, ValidationFailed) and exc.code == "traffic_allocation_exceeds_100"
    assert exc.details["constraint"] == "schema_variants_traffic_sum"
    exc = await error_of(
        "UPDATE experiments SET status = 'paused' WHERE id = $1", uuid.UUID(e["id"])
    )
    assert isinstance(exc, ConflictError) and exc.details["current_status"] == "draft"
    exc = await error_of(
        "UPDATE experiments SET status = 'running' WHERE id = $1", uuid.UUID(e["id"])
    )
    assert isinstance(exc, ValidationFailed) and exc.code == "experiment_arms_invalid"
    exc = await error_of(
        "INSERT INTO workflow_schemas (key, name) VALUES ($1, 'x')", world["schema"]["key"]
    )
    assert isinstance(exc, ConflictError) and exc.code == "duplicate_key"
    exc = await error_of(
        "INSERT INTO schema_variants (schema_id, base_version, variant_key) VALUES ($1, 1, 'zz')",
        uuid.uuid4(),
    )
    assert isinstance(exc, NotFoundError)
    exc = await error_of(
        "INSERT INTO schema_variants (schema_id, base_version, variant_key) VALUES ($1, 5, 'zz')",
        uuid.UUID(sid),
    )
    assert isinstance(exc, ValidationFailed) and exc.details["field"] == "base_version"
    exc = await error_of(
        "UPDATE workflow_schema_versions SET change_summary = 'x' WHERE schema_id = $1",
        uuid.UUID(sid),
    )
    assert isinstance(exc, ConflictError) and exc.code == "schema_version_immutable"
    exc = await error_of("UPDATE experiments SET coverage = 2 WHERE id = $1", uuid.UUID(e["id"]))
    assert isinstance(exc, ValidationFailed) and exc.details["field"] == "coverage"
    other = await create_schema(client)
    foreign = await create_variant(client, other["id"], "foreign")
    exc = await error_of(
        "INSERT INTO experiment_variants (experiment_id, variant_id, position, traffic_percentage) VALUES ($1, $2, 5, 0)",
        uuid.UUID(e["id"]),
        uuid.UUID(foreign["id"]),
    )
    assert isinstance(exc, ValidationFailed) and exc.code == "experiment_variant_schema_mismatch"
    async with db_pool.acquire() as conn:
        try:
            async with conn.transaction():
                await conn.execute(
                    "UPDATE experiments SET status = 'cancelled' WHERE id = $1", uuid.UUID(e["id"])
                )
                await conn.execute(
                    "DELETE FROM experiment_variants WHERE experiment_id = $1", uuid.UUID(e["id"])
                )
            raise AssertionError("arms of a cancelled experiment changed")
        except asyncpg.PostgresError as err:
            locked = translate(err)
    assert isinstance(locked, ConflictError) and locked.code == "experiment_arms_locked"


async def test_no_input_yields_a_5xx(
    app_client: tuple[FastAPI, httpx.AsyncClient], world: dict[str, Any]
) -> None:
    """Junk into every route of the control API: always a 4xx (or a 2xx), never a 5xx."""
    app, client = app_client
    app_routes = [
        (method, path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
    ]
    ids = {
        "schema_id": world["sid"],
        "variant_id": world["a"]["id"],
        "experiment_id": world["e"]["id"],
        "version_number": "1",
    }
    junk: list[Any] = [
        None,
        [],
        "x",
        0,
        {"a": 1},
        {"name": "a\u0000b", "key": "k\u0000"},
        {
            "definition": {"workflow_steps": [{"n": "\u0000"}], "risk_config": {}, "config": {}},
            "key": "nul",
            "name": "n",
        },
        {
            "config_overrides": {"config": {"k": "\u0000"}},
            "schema_id": world["sid"],
            "variant_key": "nul",
        },
        {"traffic_allocation": 1e308},
        {"version": -1},
        {"version": 2**70},
    ]
    for method, path in app_routes:
        url = path.format(**ids)
        for body in junk:
            r = await client.request(
                method.upper(), url, json=body, headers={"If-Match": '"999999"'}
            )
            assert r.status_code < 500, (method, url, body, r.status_code, r.text)
        r = await client.request(
            method.upper(),
            url.replace(world["sid"], "x" * 40),
            params={"limit": "-1", "offset": "nan"},
        )
        assert r.status_code < 500, (method, url, r.status_code, r.text)
