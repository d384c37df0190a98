"""The HTTP edge of the hot path, on a preloaded snapshot (no Kafka): answers,
validation (422), unknown schemas (404), not ready (503), and never a 500."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.assignment.serving.component import ServingComponent
from services.assignment.serving.routes import router
from services.assignment.serving.settings import ServingSettings
from shared.assignment import sdk_payload
from shared.http import create_service_app

from .builders import client, config, three_arm, variant

pytestmark = pytest.mark.unit


def make_app(*, loaded: bool = True, **settings: Any) -> tuple[FastAPI, ServingComponent]:
    registry = CollectorRegistry()
    comp = ServingComponent(
        ServingSettings(replica_id="unit", exposures_enabled=False, **settings), registry
    )
    comp.snapshot.apply(three_arm())
    comp.snapshot.apply(config("plain", variants=[variant("a", 50)]))
    if loaded:
        comp.follower._loaded.set()
    app = create_service_app(
        title="t", description="d", service="assignment", routers=[router], registry=registry
    )
    app.state.serving = comp
    return app, comp


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app, _ = make_app()
    async with client(app) as c:
        yield c


async def test_assign_answers_the_decision_fields(http: httpx.AsyncClient) -> None:
    r = await http.post("/api/v1/assign", json={"schema": "checkout", "unit_id": "u-1"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert list(doc) == [
        "schema_id", "schema_key", "revision", "schema_version", "variant_id", "variant_key",
        "experiment_id", "experiment_key", "in_experiment", "bucket", "reason",
        "effective_config",
    ]  # fmt: skip
    assert doc["reason"] == "experiment" and doc["in_experiment"] is True
    assert doc["variant_key"] in {"control", "fast", "slow"}
    assert doc["effective_config"]["config"]["variant"] == doc["variant_key"]
    # by id, with attributes, same answer
    r2 = await http.post(
        "/api/v1/assign",
        json={"schema": doc["schema_id"], "unit_id": "u-1", "attributes": {"country": "FR"}},
    )
    assert r2.json() == doc


async def test_no_unit_is_a_random_choice(http: httpx.AsyncClient) -> None:
    seen = set()
    for body in ({"schema": "checkout"}, {"schema": "checkout", "unit_id": None}):
        for _ in range(60):
            doc = (await http.post("/api/v1/assign", json=body)).json()
            assert doc["reason"] == "random" and doc["bucket"] is None
            assert doc["in_experiment"] is False
            seen.add(doc["variant_key"])
    assert seen == {"control", "fast", "slow"}
    doc = (await http.post("/api/v1/assign", json={"schema": "plain", "unit_id": ""})).json()
    assert doc["reason"] == "random"


async def test_base_version_has_null_variant(http: httpx.AsyncClient) -> None:
    docs = [
        (await http.post("/api/v1/assign", json={"schema": "plain", "unit_id": f"u{i}"})).json()
        for i in range(200)
    ]
    base = [d for d in docs if d["reason"] == "default"]
    assert base and all(d["variant_key"] is None and d["variant_id"] is None for d in base)
    assert all(d["schema_version"] == 1 for d in base)
    rollout = [d for d in docs if d["reason"] == "rollout"]
    assert rollout and all(d["variant_key"] == "a" and d["schema_version"] == 2 for d in rollout)


async def test_batch_answers_in_order(http: httpx.AsyncClient) -> None:
    units = [f"u{i}" for i in range(1000)]
    r = await http.post("/api/v1/assign/batch", json={"schema": "checkout", "units": units})
    assert r.status_code == 200
    docs = r.json()
    assert len(docs) == 1000
    for unit in (0, 17, 999):
        one = await http.post("/api/v1/assign", json={"schema": "checkout", "unit_id": units[unit]})
        assert docs[unit] == one.json()
    mixed = await http.post(
        "/api/v1/assign/batch", json={"schema": "checkout", "units": [None, "", "x"]}
    )
    assert [d["reason"] for d in mixed.json()][:2] == ["random", "random"]


INVALID: list[tuple[Any, str]] = [
    ({}, "schema"),
    ({"unit_id": "u"}, "schema"),
    ({"schema": ""}, "schema"),
    ({"schema": 12}, "schema"),
    ({"schema": None}, "schema"),
    ({"schema": ["checkout"]}, "schema"),
    ({"schema": "x" * 201}, "schema"),
    ({"schema": "checkout", "unit_id": 5}, "unit_id"),
    ({"schema": "checkout", "unit_id": "u" * 201}, "unit_id"),
    ({"schema": "checkout", "unit_id": {"a": 1}}, "unit_id"),
    ({"schema": "checkout", "attributes": [1]}, "attributes"),
    ({"schema": "checkout", "attributes": "x"}, "attributes"),
    ([], "body"),
    ("checkout", "body"),
    (None, "body"),
    (3, "body"),
]


@pytest.mark.parametrize(("body", "field"), INVALID)
async def test_invalid_assign_requests_answer_422(
    http: httpx.AsyncClient, body: Any, field: str
) -> None:
    r = await http.post("/api/v1/assign", content=json.dumps(body))
    assert r.status_code == 422, r.text
    doc = r.json()
    assert doc["error"] == "validation_failed"
    assert doc["message"].startswith(f"{field}:")
    assert doc["detail"] and all({"loc", "msg", "type"} <= set(e) for e in doc["detail"])


BATCH_INVALID: list[tuple[Any, str]] = [
    ({"schema": "checkout"}, "units"),
    ({"schema": "checkout", "units": []}, "units"),
    ({"schema": "checkout", "units": "u1"}, "units"),
    ({"schema": "checkout", "units": [f"u{i}" for i in range(1001)]}, "units"),
    ({"schema": "checkout", "units": ["ok", 3]}, "units.1"),
    ({"schema": "checkout", "units": ["ok", "x" * 201]}, "units.1"),
    ({"units": ["a"]}, "schema"),
    ([1, 2], "body"),
]


@pytest.mark.parametrize(("body", "field"), BATCH_INVALID)
async def test_invalid_batch_requests_answer_422(
    http: httpx.AsyncClient, body: Any, field: str
) -> None:
    r = await http.post("/api/v1/assign/batch", content=json.dumps(body))
    assert r.status_code == 422, r.text
    assert r.json()["message"].startswith(f"{field}:")


@pytest.mark.parametrize("path", ["/api/v1/assign", "/api/v1/assign/batch"])
async def test_malformed_and_oversized_bodies(http: httpx.AsyncClient, path: str) -> None:
    for raw in (
        b"",
        b"{",
        b"\xff\xfe",
        b'{"schema": "checkout",}',
        b'{"schema":"\\ud800"}',
        b"nul",
    ):
        r = await http.post(path, content=raw)
        assert r.status_code == 422, (raw, r.text)
        assert r.json()["detail"][0]["type"] == "json_invalid"
    r = await http.post(path, content=b'{"schema":"' + b"x" * (1 << 20) + b'"}')
    assert r.status_code == 413


async def test_unknown_schema_is_404(http: httpx.AsyncClient) -> None:
    for path, body in (
        ("/api/v1/assign", {"schema": "nope", "unit_id": "u"}),
        ("/api/v1/assign/batch", {"schema": "nope", "units": ["u"]}),
        ("/api/v1/assign", {"schema": "00000000-0000-0000-0000-000000000000"}),
    ):
        r = await http.post(path, json=body)
        assert r.status_code == 404
        assert r.json()["error"] == "not_found"


async def test_not_loaded_is_503() -> None:
    app, _ = make_app(loaded=False)
    async with client(app) as http:
        r = await http.post("/api/v1/assign", json={"schema": "checkout", "unit_id": "u"})
        assert r.status_code == 503 and r.json()["error"] == "not_ready"
        r = await http.get("/api/v1/sdk/payload")
        assert r.status_code == 503


async def test_sdk_payload_with_etag(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/v1/sdk/payload")
    assert r.status_code == 200
    doc = r.json()
    assert set(doc["features"]) == {"checkout", "plain"}
    assert doc["features"]["checkout"]["rules"][0]["hashVersion"] == 2
    expected = sdk_payload(
        sorted(
            [three_arm(), config("plain", variants=[variant("a", 50)])], key=lambda c: c.schema_key
        )
    )
    assert doc["features"] == json.loads(json.dumps(expected["features"]))
    again = await http.get("/api/v1/sdk/payload", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_metrics_count_assignments_by_experiment_and_variant() -> None:
    app, _comp = make_app()
    async with client(app) as http:
        await http.post(
            "/api/v1/assign/batch",
            json={"schema": "checkout", "units": [f"u{i}" for i in range(300)]},
        )
        await http.post("/api/v1/assign", json={"schema": "checkout", "unit_id": "u1"})
        text = (await http.get("/metrics")).text
    registry = app.state.registry
    total = sum(
        registry.get_sample_value(
            "assignment_assignments_total",
            {
                "schema": "checkout",
                "experiment": "checkout-exp",
                "variant": v,
                "reason": "experiment",
            },
        )
        or 0
        for v in ("control", "fast", "slow")
    )
    assert total == 301
    assert "assignment_snapshot_age_seconds" in text and "assignment_exposure_buffer_depth" in text


async def test_no_input_yields_a_5xx() -> None:
    """Random JSON documents, mutated valid requests and junk bytes: never a 5xx."""
    app, _ = make_app()
    rnd = random.Random(11)
    atoms: list[Any] = [None, True, 0, -1, 1.5, 1e308, "", "checkout", "plain", "x" * 300,
                        "\u0000", "😀", [], {}, [None], {"a": None}]  # fmt: skip

    def value(depth: int = 0) -> Any:
        kind = rnd.random()
        if depth > 2 or kind < 0.6:
            return rnd.choice(atoms)
        if kind < 0.8:
            return [value(depth + 1) for _ in range(rnd.randrange(4))]
        return {
            rnd.choice(["schema", "unit_id", "units", "attributes", "x"]): value(depth + 1)
            for _ in range(rnd.randrange(4))
        }

    async with client(app) as http:
        for i in range(600):
            path = rnd.choice(["/api/v1/assign", "/api/v1/assign/batch"])
            if i % 3 == 0:
                body = {
                    "schema": rnd.choice(["checkout", "plain", "zz"]),
                    "unit_id": value(),
                    "units": value(),
                    "attributes": value(),
                }
                content = json.dumps(body).encode()
            elif i % 3 == 1:
                content = json.dumps(value()).encode()
            else:
                content = bytes(rnd.randrange(256) for _ in range(rnd.randrange(40)))
            r = await http.post(path, content=content)
            assert r.status_code < 500, (content, r.text)
            assert r.status_code in (200, 404, 422)
