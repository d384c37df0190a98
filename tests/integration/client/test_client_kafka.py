"""The client against the real Kafka broker: emitted events are consumed back and
validate as ``ExecutionEvent``; the fallback path still emits; the simulator's events
all arrive."""

from __future__ import annotations

import time

import pytest

from services.simulator import DEFAULT_BEHAVIOURS, SimulationConfig, run_simulation
from shared.client import AbflowClient, SchemaFallback
from shared.events import ExecutionEvent
from shared.kafka import make_consumer
from shared.topics import EXECUTIONS
from tests.ports import free_port
from tests.unit.client.client_fakes import SCHEMA_ID, FakeAssignmentService, split_arm

pytestmark = pytest.mark.integration


async def consume(
    bootstrap: str, topic: str, want: int, timeout: float = 30.0
) -> list[tuple[bytes, ExecutionEvent]]:
    consumer = make_consumer(bootstrap, topic, group_id=None)
    await consumer.start()
    got: list[tuple[bytes, ExecutionEvent]] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    assert r.key is not None and r.value is not None
                    got.append((r.key, ExecutionEvent.model_validate_json(r.value)))
    finally:
        await consumer.stop()
    return got


async def test_emitted_events_are_consumed_and_validate(kafka_bootstrap: str, topics: str) -> None:
    service = FakeAssignmentService()
    async with AbflowClient(
        "http://assignment.test",
        transport=service.transport(),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topics,
    ) as client:
        sent = []
        for i in range(20):
            a = await client.assign("checkout", f"u{i}")
            async with client.execution(a, execution_id=f"exec-{i}") as ex:
                ex.step("plan", True, 1.5)
                ex.risk_score = 0.1
            sent.append(ex.event)
        with pytest.raises(RuntimeError):
            async with client.execution(a, execution_id="exec-failed"):
                raise RuntimeError("workflow failed")
        sent.append(await client.emit_execution(a, success=True, duration_ms=3, wait=False))
        await client.flush()
    got = await consume(kafka_bootstrap, EXECUTIONS.full_name(topics), len(sent) + 1)
    assert len(got) == len(sent) + 1
    by_id = {ev.execution_id: (key, ev) for key, ev in got}
    for ev in sent:
        assert ev is not None
        key, received = by_id[ev.execution_id]
        assert key == ev.execution_id.encode() and received == ev
        assert received.variant_key == split_arm(received.unit_id or "")
    assert by_id["exec-failed"][1].success is False


async def test_fallback_with_assignment_service_down_still_reaches_kafka(
    kafka_bootstrap: str, topics: str
) -> None:
    timeout = 0.5
    async with AbflowClient(
        f"http://127.0.0.1:{free_port()}",
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topics,
        timeout=timeout,
        fallbacks={"checkout": SchemaFallback(schema_id=SCHEMA_ID, schema_version=4)},
    ) as client:
        t0 = time.perf_counter()
        a = await client.assign("checkout", "unit-42")
        assert time.perf_counter() - t0 < 2 * timeout + 0.1
        assert a.fallback and a.reason == "fallback"
        ev = await client.emit_execution(a, success=True, duration_ms=12.0)
    ((key, received),) = await consume(kafka_bootstrap, EXECUTIONS.full_name(topics), 1)
    assert key == ev.execution_id.encode() and received == ev
    assert received.schema_id == SCHEMA_ID and received.schema_version == 4
    assert received.variant_id is None and received.experiment_id is None
    assert received.assignment_reason == "fallback" and received.unit_id == "unit-42"


async def test_simulator_events_all_arrive_with_the_tallied_split(
    kafka_bootstrap: str, topics: str
) -> None:
    n = 600
    async with AbflowClient(
        "http://assignment.test",
        transport=FakeAssignmentService().transport(),
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topics,
    ) as client:
        result = await run_simulation(
            client,
            SimulationConfig(schema="checkout", executions=n, concurrency=16, seed=7),
            DEFAULT_BEHAVIOURS,
        )
    assert result.sent == n and result.failed == 0
    got = await consume(kafka_bootstrap, EXECUTIONS.full_name(topics), n)
    assert len({ev.execution_id for _, ev in got}) == n == len(got)
    for arm, tally in result.by_arm.items():
        events = [ev for _, ev in got if ev.variant_key == arm]
        assert len(events) == tally.sent
        assert sum(ev.success for ev in events) == tally.successes
        assert sum(ev.duration_ms for ev in events) == pytest.approx(tally.duration_sum)
