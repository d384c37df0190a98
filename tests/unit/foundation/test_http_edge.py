"""The shared HTTP edge: health, readiness, metrics, error mapping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from shared.errors import ConflictError, NotFoundError
from shared.http import create_service_app

pytestmark = pytest.mark.unit


class Fake:
    def __init__(self, name: str, status: str = "ok", ready: bool = True) -> None:
        self.name, self.status, self.ready = name, status, ready
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def stop(self) -> None:
        self.events.append("stop")

    def health(self) -> dict[str, Any]:
        return {"status": self.status, "ready": self.ready}


class Body(BaseModel):
    n: int


router = APIRouter()


@router.post("/things/{thing_id}")
async def thing(thing_id: int, body: Body) -> dict[str, int]:
    if thing_id == 404:
        raise NotFoundError("no such thing", thing_id=thing_id)
    if thing_id == 409:
        raise ConflictError("stale version", current_version=3)
    if thing_id == 500:
        raise RuntimeError("boom")
    return {"n": body.n}


async def _call(app: Any, method: str, url: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, url, **kw)


async def test_components_start_and_stop_in_order_and_report_health() -> None:
    a, b = Fake("a"), Fake("b", status="degraded", ready=False)
    app = create_service_app(
        title="t", description="d", service="t", components=lambda _: [a, b], routers=[router]
    )
    async with app.router.lifespan_context(app):
        health = await _call(app, "GET", "/health")
        ready = await _call(app, "GET", "/health/ready")
        b.ready = True
        ready_after = await _call(app, "GET", "/health/ready")
        b.status = "down"
        down = await _call(app, "GET", "/health")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert ready.status_code == 503 and ready_after.status_code == 200
    assert down.status_code == 503
    assert a.events == ["start", "stop"] and b.events == ["start", "stop"]


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/things/1", {"n": 2}, 200, None),
        ("/things/404", {"n": 2}, 404, "not_found"),
        ("/things/409", {"n": 2}, 409, "conflict"),
        ("/things/1", {"n": "x"}, 422, "validation_failed"),
        ("/things/abc", {"n": 1}, 422, "validation_failed"),
        ("/things/500", {"n": 1}, 500, "internal_error"),
    ],
)
async def test_errors_are_json_with_their_status(
    path: str, body: dict[str, Any], status: int, error: str | None
) -> None:
    app = create_service_app(title="t", description="d", service="t", routers=[router])
    resp = await _call(app, "POST", path, json=body)
    assert resp.status_code == status
    if error:
        assert resp.json()["error"] == error and resp.json()["message"]


async def test_metrics_count_requests_by_route() -> None:
    app = create_service_app(title="t", description="d", service="svc", routers=[router])
    await _call(app, "POST", "/things/1", json={"n": 1})
    text = (await _call(app, "GET", "/metrics")).text
    assert (
        'http_requests_total{method="POST",route="/things/{thing_id}",service="svc",status="200"} 1.0'
        in text
    )
