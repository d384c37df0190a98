"""The HTTP edge's access control and body limit on a small app: 401 before anything
else, 403 on the wrong scope, open operational routes, the OpenAPI document, 413."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from shared.auth import KeyRing, Scope, hash_key, principal_of, require, require_by_method
from shared.http import create_service_app

pytestmark = pytest.mark.unit

KEYS = {"admin": "ka", "read": "kr", "client": "kc"}
RING = KeyRing.parse(",".join(f"p-{s}:{s}:{hash_key(k)}" for s, k in KEYS.items()))


class Body(BaseModel):
    n: int


things = APIRouter(
    prefix="/api/v1/things", dependencies=[require_by_method(read=Scope.READ, write=Scope.ADMIN)]
)


@things.get("")
async def list_things() -> list[int]:
    return [1]


@things.post("")
async def create_thing(body: Body) -> dict[str, int]:
    return {"n": body.n}


assign = APIRouter(prefix="/api/v1/assign", dependencies=[require(Scope.CLIENT)])


@assign.post("")
async def do_assign(body: Body) -> dict[str, Any]:
    return {"n": body.n}


open_router = APIRouter()


@open_router.post("/echo")
async def echo(body: Body) -> dict[str, int]:
    return {"n": body.n}


def make_app(ring: KeyRing = RING, **kw: Any) -> FastAPI:
    return create_service_app(
        title="t",
        description="d",
        service="t",
        routers=[things, assign, open_router],
        api_keys=ring,
        **kw,
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


def bearer(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[scope]}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic a2E="},
        {"Authorization": "ka"},
    ],
)
async def test_missing_malformed_or_unknown_key_is_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for method, path in (
        ("GET", "/api/v1/things"),
        ("POST", "/api/v1/things"),
        ("GET", "/api/v1/nowhere"),
    ):
        r = await http.request(method, path, headers=headers, content=b"{not json")
        assert r.status_code == 401, (method, path)
        assert r.json()["error"] == "unauthorized" and r.json()["message"]
        assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "scope", "status"),
    [
        ("GET", "/api/v1/things", "read", 200),
        ("GET", "/api/v1/things", "admin", 200),
        ("GET", "/api/v1/things", "client", 403),
        ("POST", "/api/v1/things", "admin", 200),
        ("POST", "/api/v1/things", "read", 403),
        ("POST", "/api/v1/things", "client", 403),
        ("POST", "/api/v1/assign", "client", 200),
        ("POST", "/api/v1/assign", "admin", 200),
        ("POST", "/api/v1/assign", "read", 403),
    ],
)
async def test_scopes(
    http: httpx.AsyncClient, method: str, path: str, scope: str, status: int
) -> None:
    r = await http.request(method, path, headers=bearer(scope), json={"n": 1})
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["error"] == "forbidden"
        assert r.json()["scope"] == scope and r.json()["required_scope"] in (
            "admin",
            "read",
            "client",
        )
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


async def test_operational_routes_stay_open(http: httpx.AsyncClient) -> None:
    for path in ("/health", "/health/ready", "/metrics", "/openapi.json", "/docs"):
        assert (await http.get(path)).status_code == 200, path
    assert (await http.post("/echo", json={"n": 1})).status_code == 200


async def test_no_keys_configured_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(KeyRing())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/api/v1/things", headers=bearer("admin"))
    assert r.status_code == 401 and "API_KEYS" in r.json()["message"]
    assert any("no API key configured" in rec.getMessage() for rec in caplog.records)


async def test_principal_reaches_the_route() -> None:
    seen: list[str] = []
    router = APIRouter(prefix="/api/v1/who", dependencies=[require(Scope.READ)])

    @router.get("/me")
    async def me(request: Request) -> dict[str, str]:
        p = principal_of(request)
        seen.append(p.name)
        return {"name": p.name}

    app = create_service_app(
        title="t", description="d", service="t", routers=[router], api_keys=RING
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        r = await c.get("/api/v1/who/me", headers=bearer("admin"))
    assert r.json() == {"name": "p-admin"} and seen == ["p-admin"]


def test_openapi_declares_the_bearer_scheme_and_each_scope() -> None:
    doc = make_app().openapi()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    get = doc["paths"]["/api/v1/things"]["get"]
    post = doc["paths"]["/api/v1/things"]["post"]
    assert get["x-required-scope"] == "read" and post["x-required-scope"] == "admin"
    assert doc["paths"]["/api/v1/assign"]["post"]["x-required-scope"] == "client"
    for op in (get, post):
        assert op["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(op["responses"])
        assert "scope" in op["description"]
    assert "security" not in doc["paths"]["/echo"]["post"]


# --- body limit -------------------------------------------------------------------------
async def test_body_over_the_limit_is_413_from_content_length() -> None:
    app = make_app(max_body_bytes=2048)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        big = b'{"n": 1, "pad": "' + b"x" * 4096 + b'"}'
        r = await c.post("/echo", content=big, headers={"content-type": "application/json"})
        ok = await c.post("/echo", json={"n": 1})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert r.json()["max_bytes"] == 2048
    assert ok.status_code == 200


async def test_chunked_body_over_the_limit_is_413_without_reading_it_all() -> None:
    app = make_app(max_body_bytes=2048)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"n": 1, "pad": "'
        for _ in range(1000):
            sent += 1
            yield b"x" * 1024
        yield b'"}'

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for path, headers in (("/echo", {}), ("/api/v1/things", bearer("admin"))):
            sent = 0
            r = await c.post(
                path, content=chunks(), headers={"content-type": "application/json", **headers}
            )
            assert "content-length" not in r.request.headers
            assert r.status_code == 413, r.text
            assert r.json()["error"] == "payload_too_large"
            assert sent < 10, f"{sent} chunks of 1 KiB read for a 2 KiB limit"


async def test_body_limit_on_a_route_that_reads_the_raw_body() -> None:
    raw = APIRouter()

    @raw.post("/raw")
    async def read_raw(request: Request) -> Response:
        body = await request.body()
        return Response(str(len(body)))

    app = create_service_app(
        title="t", description="d", service="t", routers=[raw], api_keys=RING, max_body_bytes=1024
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

        async def gen() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"y" * 512

        r = await c.post("/raw", content=gen())
        small = await c.post("/raw", content=b"y" * 100)
    assert r.status_code == 413 and small.text == "100"
