"""Poison messages on the compacted config topic (consumed by assignment serving).

An own serving instance (``services.assignment.serving.app:create_app``, the same
``ServingComponent`` as the full assignment service) follows a fresh topic prefix. A
valid config is served; then every poison record of
:func:`tests.reliability.poison.config_poison` is produced (random bytes, truncated JSON,
wrong types, wrong ``config_version``, a payload over 1 MiB, tombstones with a bad or no
key, configs that fail validation); then valid configs again. Checked:

- serving never stops: ``POST /api/v1/assign`` answers 200 from the snapshot throughout,
  ``/health`` stays 200 and ready;
- the valid configs produced after the poison are applied (a new revision and a new
  schema are served);
- every poison record is counted as ``invalid`` and lands in the dead-letter topic (by
  source partition and offset) with a reason and its original bytes (only the size and
  hash of bytes over 256 KiB).
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared.events import (
    AssignmentConfig,
    ExperimentArm,
    ExperimentConfig,
    SchemaDefinition,
    VariantConfig,
)
from shared.kafka import ensure_topics
from shared.topics import CONFIG, DEAD_LETTER
from tests.conftest import KEYS
from tests.reliability.harness import LONG, ServiceProcess, read_topic, unique_prefix
from tests.reliability.poison import MIB, config_poison

pytestmark = pytest.mark.reliability

ROUNDS = 5 if LONG else 1
EMBED_LIMIT = 256 * 1024


def make_config(key: str, revision: int, coverage: float = 1.0) -> AssignmentConfig:
    sid = uuid.uuid5(uuid.NAMESPACE_URL, f"reliability:{key}")
    base = SchemaDefinition(workflow_steps=[{"name": "collect"}], config={"timeout_s": 30})
    variants = [
        VariantConfig(
            variant_id=uuid.uuid5(sid, name),
            variant_key=name,
            base_version=1,
            traffic_allocation=0,
            effective_definition=base.model_copy(update={"config": {"timeout_s": t}}),
        )
        for name, t in (("control", 30), ("treatment", 10))
    ]
    return AssignmentConfig(
        schema_id=sid,
        schema_key=key,
        revision=revision,
        base_version=1,
        base_definition=base,
        variants=variants,
        experiment=ExperimentConfig(
            experiment_id=uuid.uuid5(sid, "experiment"),
            experiment_key=f"{key}-exp",
            seed=key,
            coverage=coverage,
            arms=[
                ExperimentArm(
                    variant_id=v.variant_id,
                    variant_key=v.variant_key,
                    weight=0.5,
                    is_control=i == 0,
                )
                for i, v in enumerate(variants)
            ],
        ),
    )


@dataclass
class Serving:
    process: ServiceProcess
    producer: AIOKafkaProducer
    bootstrap: str
    prefix: str

    @property
    def config_topic(self) -> str:
        return CONFIG.full_name(self.prefix)

    async def publish(self, key: bytes | None, value: bytes | None) -> tuple[int, int]:
        md = await self.producer.send_and_wait(self.config_topic, value, key=key)
        return md.partition, md.offset

    async def publish_config(self, cfg: AssignmentConfig) -> None:
        await self.publish(str(cfg.schema_id).encode(), cfg.model_dump_json().encode())


@pytest.fixture
async def serving(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Serving]:
    prefix = unique_prefix("cf")
    await ensure_topics(kafka_bootstrap, prefix=prefix)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=3 * MIB
    )
    await producer.start()
    s = Serving(
        ServiceProcess.uvicorn(
            "serving",
            "services.assignment.serving.app:create_app",
            {
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "TOPIC_PREFIX": prefix,
                "LOG_LEVEL": "WARNING",
                "ABFLOW_SERVING_EXPOSURES_ENABLED": "false",
                "ABFLOW_SERVING_PROBE_INTERVAL_S": "0.5",
            },
            tmp_path_factory.mktemp("serving"),
            factory=True,
        ),
        producer,
        kafka_bootstrap,
        prefix,
    )
    # the first config is on the topic before the replica starts: it must be ready with it
    await s.publish_config(make_config("checkout", 1))
    s.process.start()
    try:
        await s.process.wait_http("/health/ready")
        yield s
    finally:
        await producer.stop()
        s.process.stop()


async def _assign(client: httpx.AsyncClient, schema: str, unit: str) -> dict[str, Any]:
    r = await client.post("/api/v1/assign", json={"schema": schema, "unit_id": unit})
    assert r.status_code == 200, (schema, r.status_code, r.text)
    body: dict[str, Any] = r.json()
    return body


async def test_poison_configs_are_dead_lettered_and_serving_goes_on(
    serving: Serving, reliability_summary: list[str]
) -> None:
    s = serving
    rng = random.Random()
    valid = orjson.loads(make_config("checkout", 1).model_dump_json())
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=s.process.url, timeout=5, headers=KEYS.headers("client")
    ) as client:
        first = await _assign(client, "checkout", "unit-1")
        assert first["revision"] == 1 and first["in_experiment"]

        # keep assigning while the poison goes in: serving must never fail
        stop = asyncio.Event()
        failures: list[str] = []
        answered = 0

        async def keep_assigning() -> None:
            nonlocal answered
            i = 0
            async with httpx.AsyncClient(
                base_url=s.process.url, timeout=5, headers=KEYS.headers("client")
            ) as own:
                while not stop.is_set():
                    i += 1
                    try:
                        r = await own.post(
                            "/api/v1/assign", json={"schema": "checkout", "unit_id": f"u{i}"}
                        )
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        return
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    answered += 1
                    await asyncio.sleep(0.01)

        traffic = asyncio.create_task(keep_assigning())
        sent: dict[tuple[int, int], Any] = {}
        for _ in range(ROUNDS):
            for p in config_poison(rng, valid):
                sent[await s.publish(p.key, p.value)] = p
        # then valid changes: a new revision of the served schema and a new schema
        await s.publish_config(make_config("checkout", 2, coverage=0.5))
        await s.publish_config(make_config("billing", 1))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cur = await _assign(client, "checkout", "unit-1")
            other = await client.post("/api/v1/assign", json={"schema": "billing", "unit_id": "x"})
            if cur["revision"] == 2 and other.status_code == 200:
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(f"valid configs after the poison not applied:\n{s.process.tail()}")
        health = await client.get("/health")
        assert health.status_code == 200, health.text
        report = health.json()["components"]["serving"]
        assert report["ready"] is True and report["status"] == "ok", report
        metrics = (await client.get("/metrics")).text
    invalid = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('assignment_config_records_total{outcome="invalid"}')
    )
    assert invalid == len(sent), (invalid, len(sent))

    dlq = DEAD_LETTER.full_name(s.prefix)
    deadline = time.monotonic() + 30
    while True:
        letters: dict[tuple[int, int], dict[str, Any]] = {}
        for r in await read_topic(s.bootstrap, dlq, timeout=5):
            letter = orjson.loads(r.value)
            if letter["source_topic"] == s.config_topic:
                letters.setdefault((letter["partition"], letter["offset"]), letter)
        if len(letters) >= len(sent) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    stop.set()  # serving went on while the follower dead-lettered
    await traffic
    assert not failures, failures[:5]
    assert answered > 0
    missing = [f"{p.name}@{pos}" for pos, p in sent.items() if pos not in letters]
    assert not missing, f"not dead-lettered: {missing}\n{s.process.tail()}"
    assert set(letters) == set(sent), "valid config records were dead-lettered"
    problems = []
    for pos, p in sent.items():
        letter = letters[pos]
        if not letter["reason"] or not letter["error_code"]:
            problems.append(f"{p.name}: no reason or code")
        if letter["service"] != "assignment":
            problems.append(f"{p.name}: service {letter['service']}")
        if p.value is not None and len(p.value) > EMBED_LIMIT:
            if letter["value_b64"] is not None or "not embedded" not in letter["reason"]:
                problems.append(f"{p.name}: oversize value not summarised")
        elif letter["value_b64"] != (
            None if p.value is None else base64.b64encode(p.value).decode()
        ):
            problems.append(f"{p.name}: value_b64 is not the original bytes")
    assert not problems, problems
    took = time.monotonic() - started
    codes = sorted({letter["error_code"] for letter in letters.values()})
    reliability_summary.append(
        f"poison/config: {len(sent)} poison records all dead-lettered ({', '.join(codes)}); "
        f"{answered} assignments served meanwhile, 0 errors; valid configs after them applied; "
        f"{took:.1f}s"
    )
