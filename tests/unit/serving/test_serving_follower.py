"""Health of the config follower, driven by a fake consumer (the real broker is in the
integration tests): loaded, caught up, Kafka unreachable, stale snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from services.assignment.serving.config_follower import ConfigFollower
from services.assignment.serving.metrics import ServingMetrics
from services.assignment.serving.settings import ServingSettings
from services.assignment.serving.snapshot import Snapshot

from .builders import three_arm

pytestmark = pytest.mark.unit


class FakeConsumer:
    """One partition holding ``records``; ``down`` makes the probes hang."""

    def __init__(self, records: list[tuple[bytes | None, bytes | None]]) -> None:
        self.records = records
        self.position_ = 0
        self.down = False
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def assign(self, tps: list[TopicPartition]) -> None:
        self.tp = tps[0]

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.position_ = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position_ = offset

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.down:
            await asyncio.sleep(3600)
        return {tp: len(self.records) for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.position_

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, Any]:
        if self.position_ >= len(self.records):
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        out = []
        for offset in range(self.position_, len(self.records)):
            key, value = self.records[offset]
            out.append(ConsumerRecord(self.tp.topic, 0, offset, 0, 0, key, value, None, 0, 0, []))
        self.position_ = len(self.records)
        return {self.tp: out}


def follower(consumer: FakeConsumer, **settings: Any) -> tuple[ConfigFollower, Snapshot]:
    options: dict[str, Any] = {
        "create_topics": False,
        "probe_interval_s": 0.05,
        "probe_timeout_s": 0.1,
        "stale_after_s": 0.5,
        "readiness_timeout_s": 2,
        "reconnect_backoff_s": 0.05,
        **settings,
    }
    s = ServingSettings(**options)
    metrics = ServingMetrics(CollectorRegistry())
    snap = Snapshot("r", metrics)
    return ConfigFollower(s, snap, metrics, consumer_factory=lambda *a, **k: consumer), snap


def record(cfg: Any) -> tuple[bytes, bytes]:
    return str(cfg.schema_id).encode(), cfg.model_dump_json().encode()


async def test_reads_to_the_end_then_ready_and_ok() -> None:
    cfg1, cfg2 = three_arm(revision=1), three_arm(0.5, revision=2)
    consumer = FakeConsumer([record(cfg1), record(cfg2), record(cfg1), (b"junk", b"{not json")])
    f, snap = follower(consumer)
    await f.start()
    try:
        assert f.loaded
        entry = snap.get("checkout")
        assert entry is not None and entry.revision == 2  # the stale revision 1 was ignored
        h = f.health()
        assert h["status"] == "ok" and h["ready"] and h["kafka"] == "connected"
        assert h["offsets"] == {0: 4} and h["schemas"] == 1
        outcomes = f.metrics.config_records
        assert outcomes.labels("invalid")._value.get() == 1
        assert outcomes.labels("stale")._value.get() == 1
        # a tombstone removes the schema
        consumer.records.append((str(cfg1.schema_id).encode(), None))
        for _ in range(100):
            if snap.get("checkout") is None:
                break
            await asyncio.sleep(0.01)
        assert snap.get("checkout") is None
    finally:
        await f.stop()


async def test_kafka_unreachable_degrades_but_keeps_the_snapshot() -> None:
    consumer = FakeConsumer([record(three_arm())])
    f, snap = follower(consumer)
    await f.start()
    try:
        assert f.health()["status"] == "ok"
        consumer.down = True
        for _ in range(200):
            if f.health()["kafka"] == "unreachable":
                break
            await asyncio.sleep(0.01)
        h = f.health()
        assert h["status"] == "degraded" and h["ready"] is True
        assert "last_error" in h and h["unreachable_for_s"] >= 0
        assert snap.get("checkout") is not None
        await asyncio.sleep(0.6)
        h = f.health()
        assert h["snapshot_age_s"] > 0.5  # stale: no confirmation since Kafka went away
        consumer.down = False
        for _ in range(200):
            if f.health()["status"] == "ok":
                break
            await asyncio.sleep(0.01)
        h = f.health()
        assert h["status"] == "ok" and h["snapshot_age_s"] < 0.5
    finally:
        await f.stop()


async def test_never_loaded_is_down_and_not_ready() -> None:
    consumer = FakeConsumer([record(three_arm())])
    consumer.down = True
    f, _ = follower(consumer, readiness_timeout_s=0.3)
    await f.start()  # returns after the readiness timeout
    try:
        h = f.health()
        assert h["status"] == "down" and h["ready"] is False and h["kafka"] == "unreachable"
    finally:
        await f.stop()
