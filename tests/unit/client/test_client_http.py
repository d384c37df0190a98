"""The client's network path (aiohttp) against a real HTTP server on loopback: what it
sends, how it reads answers, refusals, retriable statuses and dropped connections.
(The other client tests inject an ``httpx.MockTransport``, which takes the httpx path.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from shared.client import AbflowClient, AssignedConfig, AssignmentRejectedError, SchemaFallback
from tests.ports import free_port
from tests.unit.client.client_fakes import BASE_DEFINITION, SCHEMA_ID, MemorySink, answer

pytestmark = pytest.mark.unit

FALLBACK = SchemaFallback(
    schema_id=SCHEMA_ID,
    schema_version=3,
    definition=AssignedConfig.model_validate(BASE_DEFINITION),
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """An aiohttp server whose ``/api/v1/assign`` answers with ``handler``; it keeps
    every request it received (headers and JSON body)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.seen: list[tuple[dict[str, str], Any]] = []
        self.url = ""

    async def _assign(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((dict(request.headers), json.loads(await request.read())))
        return await self.handler(request)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        app = web.Application()
        app.router.add_post("/api/v1/assign", server._assign)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        server.url = f"http://127.0.0.1:{port}"
        return server

    yield start
    for runner in runners:
        await runner.cleanup()


def client(url: str, **kwargs: Any) -> AbflowClient:
    return AbflowClient(url, sink=MemorySink(), api_key="k-123", **kwargs)


async def test_sends_the_key_and_the_json_body_and_reads_the_answer(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def ok(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(answer("control", body["unit_id"]))

    server = await serve(ok)
    async with client(server.url) as c:
        a = await c.assign("checkout", "u-1", {"country": "FR"})
        b = await c.assign("checkout", "u-2")
    assert (a.variant_key, a.unit_id, a.fallback) == ("control", "u-1", False)
    assert b.unit_id == "u-2" and len(server.seen) == 2
    headers, body = server.seen[0]
    assert headers["Authorization"] == "Bearer k-123"
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert body == {"schema": "checkout", "unit_id": "u-1", "attributes": {"country": "FR"}}


async def test_a_refusal_is_raised_with_its_status_and_body(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def forbidden(_: web.Request) -> web.Response:
        return web.json_response({"error": "forbidden", "message": "scope"}, status=403)

    server = await serve(forbidden)
    async with client(server.url, fallbacks={"checkout": FALLBACK}) as c:
        with pytest.raises(AssignmentRejectedError) as caught:
            await c.assign("checkout", "u-1")
    assert caught.value.status_code == 403
    assert caught.value.body == {"error": "forbidden", "message": "scope"}
    assert "CLIENT_API_KEY" in str(caught.value)


async def test_a_retriable_status_is_retried(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    calls = 0

    async def flaky(_: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.json_response({"error": "unavailable"}, status=503)
        return web.json_response(answer("treatment", "u-1"))

    server = await serve(flaky)
    async with client(server.url, retries=1, retry_backoff=0) as c:
        a = await c.assign("checkout", "u-1")
        assert c.stats.assign_retries == 1
    assert a.variant_key == "treatment" and not a.fallback


async def test_a_dropped_connection_or_a_broken_answer_falls_back(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def drop(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()  # no answer at all
        await asyncio.sleep(0)
        return web.Response()

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(body=b"{not json", content_type="application/json")

    for handler in (drop, garbage):
        server = await serve(handler)
        async with client(server.url, retries=1, retry_backoff=0) as c:
            c.set_fallback("checkout", FALLBACK)
            a = await c.assign("checkout", "u-1")
            assert c.stats.assign_requests == 2  # the attempt and its retry
        assert a.fallback and a.schema_version == 3, handler.__name__


async def test_close_releases_the_session(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response(answer(None, "u-1"))

    server = await serve(ok)
    c = client(server.url)
    await c.assign("checkout", "u-1")
    poster: Any = c._assign._http
    session = poster._session
    assert session is not None and not session.closed
    await c.close()
    assert session.closed
