"""Helpers of the serving integration tests: publish configs to the real config topic,
run serving apps in process, call them over HTTP (ASGI)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from services.assignment.serving.component import ServingComponent
from services.assignment.serving.settings import ServingSettings
from shared.events import AssignmentConfig
from shared.kafka import make_producer
from shared.topics import CONFIG
from tests.conftest import KEYS
from tests.ports import free_port
from tests.unit.serving.builders import client, serving_app


async def publish(
    bootstrap: str, prefix: str, *records: AssignmentConfig | tuple[uuid.UUID, None]
) -> None:
    """Produce configs (or ``(schema_id, None)`` tombstones) to the config topic."""
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for rec in records:
            if isinstance(rec, AssignmentConfig):
                key, value = str(rec.schema_id).encode(), rec.model_dump_json().encode()
            else:
                key, value = str(rec[0]).encode(), None
            await producer.send_and_wait(CONFIG.full_name(prefix), key=key, value=value)
    finally:
        await producer.stop()


def settings(bootstrap: str, prefix: str, **overrides: Any) -> ServingSettings:
    options: dict[str, Any] = {
        "kafka_bootstrap_servers": bootstrap,
        "topic_prefix": prefix,
        "replica_id": f"it-{uuid.uuid4().hex[:6]}",
        "create_topics": False,
        "readiness_timeout_s": 20,
        "reconnect_backoff_s": 0.1,
        "reconnect_backoff_max_s": 0.5,
        "probe_interval_s": 0.2,
        "probe_timeout_s": 1.0,
        "exposure_linger_ms": 5,
        **overrides,
    }
    return ServingSettings(**options)


@dataclass
class Replica:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def serving(self) -> ServingComponent:
        comp: ServingComponent = self.app.state.serving
        return comp

    async def assign(self, schema: str, unit_id: str | None, **extra: Any) -> dict[str, Any]:
        """``POST /api/v1/assign`` through the whole ASGI app (middlewares, routing),
        without httpx's per-request cost (tests make thousands of these)."""
        body = orjson.dumps({"schema": schema, "unit_id": unit_id, **extra})
        status, content = await asgi_post(self.app, "/api/v1/assign", body)
        assert status == 200, content
        doc: dict[str, Any] = orjson.loads(content)
        return doc

    async def batch(self, schema: str, units: Sequence[str | None]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(units), 1000):
            r = await self.http.post(
                "/api/v1/assign/batch", json={"schema": schema, "units": list(units[i : i + 1000])}
            )
            assert r.status_code == 200, r.text
            out.extend(r.json())
        return out

    async def health(self) -> tuple[int, dict[str, Any]]:
        r = await self.http.get("/health")
        return r.status_code, r.json()


async def asgi_post(app: FastAPI, path: str, body: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 POST as an ASGI call: (status, body)."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"serving"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {KEYS.client}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("serving", 80),
        "state": {},
    }
    await app(scope, receive, send)
    return status, b"".join(chunks)


@asynccontextmanager
async def running(s: ServingSettings) -> AsyncIterator[Replica]:
    """A serving app with its lifespan started (the config topic read to its end)."""
    app = serving_app(s)
    async with app.router.lifespan_context(app), client(app) as http:
        yield Replica(app, http)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 10.0, every: float = 0.02
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return await check()


def dead_address() -> str:
    """A loopback address nothing listens on (connection refused)."""
    return f"127.0.0.1:{free_port()}"


def unit_ids(n: int, seed: int = 1) -> list[str]:
    import random

    rnd = random.Random(seed)
    return [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(n)]
