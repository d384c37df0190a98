"""Execution events built by the client, the ``execution`` context manager and the
blocking facade (with an in-memory sink; Kafka is in tests/integration/client)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from shared.client import (
    AbflowClient,
    Assignment,
    EmitError,
    SchemaFallback,
    SyncAbflowClient,
    build_execution_event,
    encode_event,
)
from shared.events import ExecutionEvent, StepResult
from tests.unit.client.client_fakes import (
    EXPERIMENT_ID,
    SCHEMA_ID,
    VARIANTS,
    FakeAssignmentService,
    MemorySink,
    answer,
)

pytestmark = pytest.mark.unit

TREATMENT = Assignment.model_validate({**answer("treatment", "u1"), "unit_id": "u1"})
FALLBACK = SchemaFallback(schema_id=SCHEMA_ID, schema_version=2).assignment("u2")


def make_client(sink: MemorySink | None = None, **kwargs: object) -> AbflowClient:
    return AbflowClient(
        "http://assignment.test",
        transport=FakeAssignmentService().transport(),
        sink=sink or MemorySink(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_event_carries_schema_version_variant_and_experiment_of_the_assignment() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    ev = build_execution_event(
        TREATMENT,
        success=True,
        duration_ms=250.0,
        execution_id="run-1",
        risk_score=0.25,
        steps=[StepResult(name="plan", success=True, duration_ms=100)],
        started_at=t,
    )
    assert ev.schema_id == SCHEMA_ID and ev.schema_version == 1
    assert ev.variant_id == VARIANTS["treatment"] and ev.variant_key == "treatment"
    assert ev.experiment_id == EXPERIMENT_ID and ev.assignment_reason == "experiment"
    assert ev.unit_id == "u1" and ev.execution_id == "run-1"
    assert ev.completed_at - ev.started_at == timedelta(milliseconds=250)
    key, value = encode_event(ev)
    assert key == b"run-1"
    assert ExecutionEvent.model_validate_json(value) == ev


def test_fallback_event_is_on_the_base_version_without_variant_or_experiment() -> None:
    ev = build_execution_event(FALLBACK, success=False, duration_ms=5.0)
    assert ev.schema_version == 2 and ev.variant_id is None and ev.variant_key is None
    assert ev.experiment_id is None and ev.assignment_reason == "fallback"
    assert ev.unit_id == "u2" and len(ev.execution_id) == 32
    assert ev.completed_at >= ev.started_at


async def test_emit_execution_sends_through_the_sink_and_counts() -> None:
    sink = MemorySink()
    async with make_client(sink) as client:
        ev = await client.emit_execution(TREATMENT, success=True, duration_ms=10, unit_id="x")
        assert sink.events == [ev] and ev.unit_id == "x"
        assert client.stats.emitted == 1
    assert sink.closed


async def test_emit_failure_raises_emit_error_and_counts() -> None:
    async with make_client(MemorySink(fail=True)) as client:
        with pytest.raises(EmitError):
            await client.emit_execution(TREATMENT, success=True, duration_ms=1)
        assert client.stats.emit_failures == 1 and client.stats.emitted == 0


async def test_execution_context_times_and_emits_success() -> None:
    sink = MemorySink()
    async with make_client(sink) as client:
        a = await client.assign("checkout", "u7")
        async with client.execution(a, execution_id="e-7") as ex:
            with ex.timed_step("plan"):
                await asyncio.sleep(0.02)
            ex.step("review", True, 3.5)
            ex.risk_score = 0.4
    (ev,) = sink.events
    assert ev is ex.event
    assert ev.success and ev.execution_id == "e-7" and ev.unit_id == "u7"
    assert ev.variant_key == a.variant_key and ev.risk_score == 0.4
    assert [s.name for s in ev.steps] == ["plan", "review"]
    assert ev.steps[0].duration_ms >= 15 and ev.duration_ms >= ev.steps[0].duration_ms
    assert ev.completed_at >= ev.started_at


async def test_execution_context_exception_emits_failure_and_reraises() -> None:
    sink = MemorySink()
    async with make_client(sink) as client:
        with pytest.raises(RuntimeError, match="boom"):
            async with client.execution(TREATMENT) as ex:
                with ex.timed_step("execute"):
                    raise RuntimeError("boom")
    (ev,) = sink.events
    assert not ev.success
    assert ev.steps == [
        StepResult(name="execute", success=False, duration_ms=ev.steps[0].duration_ms)
    ]


async def test_execution_fail_marks_failure_without_raising() -> None:
    sink = MemorySink()
    async with make_client(sink) as client, client.execution(TREATMENT) as ex:
        ex.fail()
    assert ex.failed and not sink.events[0].success


async def test_cancelled_execution_emits_nothing() -> None:
    sink = MemorySink()
    async with make_client(sink) as client:

        async def run() -> None:
            async with client.execution(TREATMENT):
                await asyncio.sleep(10)

        task = asyncio.create_task(run())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sink.events == []


async def test_emit_failure_in_context_is_logged_not_raised_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with make_client(MemorySink(fail=True)) as client:
        with caplog.at_level(logging.ERROR, "shared.client"):
            async with client.execution(TREATMENT) as ex:
                pass
        assert ex.event is not None and client.stats.emit_failures == 1
    assert "not emitted" in caplog.text


async def test_strict_emit_raises_on_success_path_only() -> None:
    async with make_client(MemorySink(fail=True), strict_emit=True) as client:
        with pytest.raises(EmitError):
            async with client.execution(TREATMENT):
                pass
        with pytest.raises(ValueError, match="workflow"):  # the workflow's error wins
            async with client.execution(TREATMENT):
                raise ValueError("workflow")


async def test_invalid_risk_score_does_not_break_the_workflow() -> None:
    sink = MemorySink()
    async with make_client(sink) as client:
        async with client.execution(TREATMENT) as ex:
            ex.risk_score = 1.5  # outside [0, 1]: the event is invalid
        assert sink.events == [] and ex.event is None


def test_sync_facade_assigns_and_emits() -> None:
    sink = MemorySink()
    with SyncAbflowClient(
        "http://assignment.test", transport=FakeAssignmentService().transport(), sink=sink
    ) as client:
        a = client.assign("checkout", "u1")
        with client.execution(a) as ex:
            ex.step("plan", True, 1.0)
        with pytest.raises(KeyError), client.execution(a):
            raise KeyError("x")
        ev = client.emit_execution(a, success=True, duration_ms=2.0)
    assert [e.success for e in sink.events] == [True, False, True]
    assert sink.events[2] == ev and sink.closed
    with pytest.raises(RuntimeError, match="closed"):
        client.assign("checkout", "u1")


def test_events_serialise_as_the_contract_json() -> None:
    ev = build_execution_event(TREATMENT, success=True, duration_ms=1.0, execution_id="e")
    data = json.loads(encode_event(ev)[1])
    assert data["event_version"] == 1 and data["variant_key"] == "treatment"
