"""Access control of every protected operation, walked from each service's OpenAPI
document: no key, an unknown key or a malformed header -> 401; a key whose scope does
not grant the operation -> 403; the right scope -> neither. Plus: the audit actor is
the key's principal, and a body over the limit is a 413 before anything is read."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.analysis.main import create_app as create_analysis
from services.analysis.settings import AnalysisSettings
from services.assignment.control.settings import ControlSettings
from services.assignment.main import create_app as create_assignment
from shared.auth import Scope, new_key
from shared.kafka import ensure_topics
from tests.conftest import KEYS
from tests.integration.assignment.helpers import settings as serving_settings

pytestmark = pytest.mark.integration

ZERO_UUID = "00000000-0000-4000-8000-000000000000"
OPEN_PATHS = ("/health", "/health/ready", "/metrics", "/openapi.json", "/docs")


@pytest.fixture(scope="module")
async def apps(database_url: str, kafka_bootstrap: str) -> AsyncIterator[dict[str, FastAPI]]:
    topics = f"t{new_key()[-10:].lower().encode().hex()[:10]}."
    await ensure_topics(kafka_bootstrap, prefix=topics)
    assignment = create_assignment(
        ControlSettings(
            database_url=database_url,
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=topics,
            relay_poll_interval_s=0.05,
        ),
        serving_settings(kafka_bootstrap, topics, exposures_enabled=False),
    )
    analysis = create_analysis(AnalysisSettings(database_url=database_url))
    async with (
        assignment.router.lifespan_context(assignment),
        analysis.router.lifespan_context(analysis),
    ):
        yield {"assignment": assignment, "analysis": analysis}


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


def _operations(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, concrete path, required scope) of every /api/ operation."""
    ops = []
    for path, item in app.openapi()["paths"].items():
        if not path.startswith("/api/"):
            continue
        concrete = re.sub(r"\{[^}]*number[^}]*\}", "1", path)
        concrete = re.sub(r"\{[^}]+\}", ZERO_UUID, concrete)
        if "{metric}" in path:
            concrete = path.replace("{metric}", "success_rate")
            concrete = re.sub(r"\{[^}]+\}", ZERO_UUID, concrete)
        for method, op in item.items():
            assert "x-required-scope" in op, f"{method.upper()} {path} is not protected"
            assert op["security"] == [{"bearerAuth": []}], path
            assert {"401", "403"} <= set(op["responses"]), path
            ops.append((method.upper(), concrete, op["x-required-scope"]))
    return ops


@pytest.mark.parametrize("service", ["assignment", "analysis"])
async def test_every_protected_operation(apps: dict[str, FastAPI], service: str) -> None:
    app = apps[service]
    ops = _operations(app)
    assert len(ops) >= (30 if service == "assignment" else 8)
    async with _client(app) as http:
        for path in OPEN_PATHS:
            assert (await http.get(path)).status_code == 200, path
        for method, path, required in ops:
            where = f"{method} {path}"
            kw: dict[str, Any] = {"json": {}} if method in ("POST", "PATCH") else {}
            for headers in (
                {},
                {"Authorization": f"Bearer {new_key()}"},
                {"Authorization": f"Basic {KEYS.admin}"},
                {"Authorization": KEYS.admin},
            ):
                r = await http.request(method, path, headers=headers, **kw)
                assert r.status_code == 401, (where, headers, r.text)
                assert r.json()["error"] == "unauthorized", where
                assert r.headers["www-authenticate"].startswith("Bearer"), where
            for scope in Scope:
                r = await http.request(method, path, headers=KEYS.headers(scope.value), **kw)
                if scope.allows(Scope(required)):
                    assert r.status_code not in (401, 403), (where, scope, r.text)
                    assert r.status_code < 500 or r.status_code == 503, (where, scope, r.text)
                else:
                    assert r.status_code == 403, (where, scope, r.text)
                    body = r.json()
                    assert body["error"] == "forbidden" and body["required_scope"] == required


async def test_routes_outside_the_document_are_protected_too(apps: dict[str, FastAPI]) -> None:
    async with _client(apps["assignment"]) as http:
        for method, path in (
            ("POST", "/api/v1/schemas/"),
            ("GET", "/api/v1/experiments/"),
            ("GET", "/api/v1/no-such-route"),
        ):
            r = await http.request(method, path, json={})
            assert r.status_code == 401, (method, path)
        r = await http.post("/api/v1/schemas/", json={}, headers=KEYS.headers("read"))
        assert r.status_code == 403


async def test_audit_actor_is_the_principal(apps: dict[str, FastAPI]) -> None:
    body = {
        "key": f"acl-{new_key()[-10:].lower().replace('-', 'x').replace('_', 'y')}",
        "name": "access control",
        "definition": {"workflow_steps": [{"name": "a"}], "risk_config": {}, "config": {}},
    }
    async with _client(apps["assignment"]) as http:
        created = await http.post("/api/v1/schemas", json=body, headers=KEYS.headers("admin"))
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        patched = await http.patch(
            f"/api/v1/schemas/{sid}",
            json={"description": "changed on behalf of alice"},
            headers={**KEYS.headers("admin"), "X-Actor": "alice"},
        )
        assert patched.status_code == 200, patched.text
        history = await http.get(f"/api/v1/schemas/{sid}/history", headers=KEYS.headers("read"))
    actors = [h["actor"] for h in history.json()["items"]]
    admin = KEYS.principal("admin")
    assert actors == [f"{admin} (alice)", admin]


async def test_body_over_the_limit_is_413(apps: dict[str, FastAPI]) -> None:
    big = b'{"key": "' + b"x" * (1 << 20) + b'"}'

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    async with _client(apps["assignment"]) as http:
        for path, scope in (("/api/v1/schemas", "admin"), ("/api/v1/assign", "client")):
            for content in (big, chunked()):
                r = await http.post(
                    path,
                    content=content,
                    headers={**KEYS.headers(scope), "content-type": "application/json"},
                )
                assert r.status_code == 413, (path, r.text[:200])
                assert r.json()["error"] == "payload_too_large"


async def test_pagination_and_batch_caps_answer_422(apps: dict[str, FastAPI]) -> None:
    """Every list endpoint caps ``limit`` (and ``offset``); the batch caps its units."""
    lists = {
        "assignment": [
            "/api/v1/schemas",
            f"/api/v1/schemas/{ZERO_UUID}/versions",
            f"/api/v1/schemas/{ZERO_UUID}/history",
            "/api/v1/versions/variants",
            "/api/v1/experiments",
        ],
        "analysis": ["/api/v1/experiments/statuses"],
    }
    for service, paths in lists.items():
        async with _client(apps[service]) as http:
            for path in paths:
                for params in ({"limit": 100_000}, {"limit": 0}, {"offset": 10**12}):
                    r = await http.get(path, params=params, headers=KEYS.headers("read"))
                    assert r.status_code == 422, (path, params, r.text)
                    assert r.json()["error"] == "validation_failed"
    async with _client(apps["assignment"]) as http:
        for path in lists["assignment"]:
            r = await http.get(path, params={"limit": 201}, headers=KEYS.headers("read"))
            assert r.status_code == 422, (path, r.text)  # ABFLOW_CONTROL_MAX_PAGE_SIZE
        r = await http.post(
            "/api/v1/assign/batch",
            json={"schema": "s", "units": [f"u{i}" for i in range(1001)]},
            headers=KEYS.headers("client"),
        )
        assert r.status_code == 422 and "1000" in r.json()["message"]
