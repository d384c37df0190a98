"""Exposure events on the real exposures topic, and a full buffer that drops (counted)
without slowing requests (no request waits for the broker: proven by counting how often
a request gives the event loop up, not by timing it)."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

import pytest
from aiokafka.partitioner import DefaultPartitioner

from shared.events import ExposureEvent
from shared.kafka import make_consumer
from shared.topics import EXPOSURES
from tests.unit.serving.builders import three_arm

from .helpers import asgi_post, dead_address, eventually, publish, running, settings

pytestmark = pytest.mark.integration

T = TypeVar("T")


class Suspensions(Generic[T]):
    """Awaits a coroutine and counts how often it suspends (waits for something: the
    broker, room in a buffer, a lock) before it returns."""

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        self.count = 0

    def __await__(self) -> Generator[Any, Any, T]:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                waited = self.coro.send(value) if error is None else self.coro.throw(error)
            except StopIteration as done:
                result: T = done.value
                return result
            self.count += 1
            try:
                value, error = (yield waited), None
            except BaseException as exc:  # noqa: BLE001 - e.g. cancellation: to the coroutine
                value, error = None, exc


async def read_all(bootstrap: str, topic: str, want: int, timeout: float = 15.0) -> list[Any]:
    consumer = make_consumer(bootstrap, topic, group_id=None)
    await consumer.start()
    got: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=300)).values():
                got.extend(records)
        # and nothing more arrives
        for records in (await consumer.getmany(timeout_ms=700)).values():
            got.extend(records)
    finally:
        await consumer.stop()
    return got


async def test_exposures_arrive_keyed_by_unit_with_the_decision(
    kafka_bootstrap: str, topics: str
) -> None:
    cfg = three_arm(0.5)
    await publish(kafka_bootstrap, topics, cfg)
    s = settings(kafka_bootstrap, topics, replica_id="replica-x", exposure_dedupe_window_s=300)
    units = [f"exp-unit-{i}" for i in range(400)]
    async with running(s) as replica:
        t0 = time.time()
        decisions = {u: await replica.assign("checkout", u) for u in units}
        for u in units[:50]:  # repeats: this replica already exposed them
            await replica.assign("checkout", u)
        await replica.batch("checkout", units[:100])
        await replica.assign("checkout", None)  # random: no exposure
        exposed = {u: d for u, d in decisions.items() if d["in_experiment"]}
        assert 150 < len(exposed) < 250

        async def flushed() -> bool:
            return replica.serving.exposures.sent >= len(exposed)

        assert await eventually(flushed, timeout=30)
        registry = replica.app.state.registry
        assert registry.get_sample_value("assignment_exposures_sent_total") == len(exposed)
        assert registry.get_sample_value("assignment_exposures_deduplicated_total") > 0
    records = await read_all(kafka_bootstrap, EXPOSURES.full_name(topics), len(exposed))
    assert len(records) == len(exposed)  # once per unit, none for units outside
    partitioner = DefaultPartitioner()
    partitions = list(range(EXPOSURES.partitions))
    for rec in records:
        event = ExposureEvent.model_validate_json(rec.value)
        d = exposed[event.unit_id]
        assert rec.key == event.unit_id.encode()
        assert rec.partition == partitioner(rec.key, partitions, partitions)
        assert str(event.experiment_id) == d["experiment_id"]
        assert event.experiment_key == d["experiment_key"] == "checkout-exp"
        assert str(event.variant_id) == d["variant_id"] and event.variant_key == d["variant_key"]
        assert str(event.schema_id) == d["schema_id"] and event.bucket == d["bucket"]
        assert event.replica == "replica-x"
        assert t0 - 1 <= event.exposed_at.timestamp() <= time.time()
        assert abs(rec.timestamp / 1000 - event.exposed_at.timestamp()) < 0.002


async def test_full_buffer_drops_without_slowing_requests(
    kafka_bootstrap: str, topics: str, report: Callable[[str], None]
) -> None:
    """Exposures go to a Kafka that is not there: the buffer fills, the rest is dropped
    and counted, and no request waits: each suspends exactly as often as the same request
    with exposures off (a request that awaited the broker or room in the buffer would
    suspend more). Timings are reported only ("serving timings" summary)."""
    await publish(kafka_bootstrap, topics, three_arm())
    stuck = settings(
        kafka_bootstrap,
        topics,
        exposures_bootstrap_servers=dead_address(),
        exposure_buffer_size=100,
        exposure_dedupe_window_s=0,
    )
    off = settings(kafka_bootstrap, topics, exposures_enabled=False)
    n = 3000
    async with running(stuck) as a, running(off) as b:
        timings: dict[str, list[float]] = {"stuck": [], "off": []}
        suspensions: dict[str, list[int]] = {"stuck": [], "off": []}
        for i in range(n):  # interleaved, so that machine noise hits both alike
            for name, replica in (("stuck", a), ("off", b)):
                body = b'{"schema":"checkout","unit_id":"u-%d"}' % i
                call = Suspensions(asgi_post(replica.app, "/api/v1/assign", body))
                t0 = time.perf_counter()
                status, _ = await call
                timings[name].append(time.perf_counter() - t0)
                suspensions[name].append(call.count)
                assert status == 200
            if i % 500 == 0:
                await asyncio.sleep(0)  # let the sender run (it cannot send)
        # the structural form of "as fast as with exposures off": no extra waits
        assert suspensions["stuck"] == suspensions["off"], (
            Counter(suspensions["stuck"]),
            Counter(suspensions["off"]),
        )
        sink = a.serving.exposures
        assert len(sink.buffer) == 100
        assert sink.dropped == n - 100
        registry = a.app.state.registry
        assert (
            registry.get_sample_value(
                "assignment_exposures_dropped_total", {"reason": "buffer_full"}
            )
            == n - 100
        )
        assert registry.get_sample_value("assignment_exposure_buffer_depth") == 100
        status, health = await a.health()
        exposures = health["components"]["serving"]["exposures"]
        assert status == 200 and health["status"] == "degraded"
        assert exposures["producer"] == "disconnected" and exposures["dropped"] == n - 100
    med_stuck = statistics.median(timings["stuck"])
    med_off = statistics.median(timings["off"])
    p99_stuck = sorted(timings["stuck"])[int(0.99 * n)]
    p99_off = sorted(timings["off"])[int(0.99 * n)]
    report(
        f"assign with a full exposure buffer: median {med_stuck * 1e6:.0f} µs, p99 {p99_stuck * 1e6:.0f} µs; "
        f"exposures off: median {med_off * 1e6:.0f} µs, p99 {p99_off * 1e6:.0f} µs "
        f"(suspensions per request: {dict(Counter(suspensions['stuck']))})"
    )
