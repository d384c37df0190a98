"""Fixtures of the control-plane integration tests: an app on the session database with
the relay publishing to the test's own topics, an HTTP client, and a config-topic reader."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.assignment.control.component import ControlPlane
from services.assignment.control.routes import routers
from services.assignment.control.settings import ControlSettings
from shared.http import create_service_app
from shared.kafka import make_consumer
from shared.topics import CONFIG
from tests.conftest import KEYS


def build_app(settings: ControlSettings) -> FastAPI:
    registry = CollectorRegistry()

    def components(app: FastAPI) -> list[ControlPlane]:
        app.state.control = ControlPlane(settings, registry)
        return [app.state.control]

    return create_service_app(
        title="control (test)",
        description="control plane under test",
        components=components,
        routers=routers,
        registry=registry,
        service="assignment",
    )


@asynccontextmanager
async def running(settings: ControlSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://control", headers=KEYS.headers("admin")
        ) as client:
            yield app, client


@pytest.fixture
def control_settings(database_url: str, kafka_bootstrap: str, topics: str) -> ControlSettings:
    return ControlSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topics,
        relay_poll_interval_s=0.05,
        pool_max_size=10,
    )


@pytest.fixture
async def app_client(
    control_settings: ControlSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(control_settings) as pair:
        yield pair


@pytest.fixture
def client(app_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_client[1]


class ConfigTopic:
    """Reads the compacted config topic from the beginning: every record per key, and the
    consumer's view (the value of the highest revision per schema)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.records: dict[str, list[dict[str, Any] | None]] = {}

    async def poll(self, timeout_ms: int = 100) -> None:
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        for recs in batch.values():
            for r in recs:
                key = r.key.decode()
                value = None if r.value is None else json.loads(r.value)
                self.records.setdefault(key, []).append(value)

    def latest(self, schema_id: str) -> dict[str, Any] | None:
        return (self.records.get(str(schema_id)) or [None])[-1]

    async def wait_for(
        self,
        schema_id: Any,
        predicate: Callable[[dict[str, Any] | None], bool],
        timeout: float = 15.0,
    ) -> dict[str, Any] | None:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            key = str(schema_id)
            if key in self.records and predicate(self.latest(key)):
                return self.latest(key)
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"config topic: no matching value for {key}; last = {self.latest(key)!r}"
                )
            await self.poll()

    async def wait_revision(
        self, schema_id: Any, revision: int, timeout: float = 15.0
    ) -> dict[str, Any]:
        value = await self.wait_for(
            schema_id, lambda v: v is not None and v["revision"] >= revision, timeout
        )
        assert value is not None and value["revision"] == revision, value
        return value


@pytest.fixture
async def config_topic(kafka_bootstrap: str, topics: str) -> AsyncIterator[ConfigTopic]:
    consumer = make_consumer(
        kafka_bootstrap, group_id=None, client_id=f"ctl-test-{uuid.uuid4().hex[:6]}"
    )
    await consumer.start()
    try:
        tp = TopicPartition(CONFIG.full_name(topics), 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        yield ConfigTopic(consumer)
    finally:
        await consumer.stop()
