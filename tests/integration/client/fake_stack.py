"""A stand-in for the assignment and analysis services, for testing the demo driver
before they land: the control API and ``assign`` in memory, and an experiment status
computed with ``shared.results.analyze`` (what the analysis service runs) from the
execution events it consumes from the real Kafka topic, and a performance summary with
percentiles. Runs in a child process with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException

from shared.assignment import gb_hash
from shared.events import ExecutionEvent
from shared.kafka import make_consumer
from shared.results import ArmAggregate, analyze
from shared.results.experiment import ArmRecord, ExperimentInputs, ExperimentRecord
from shared.topics import EXECUTIONS

ROOT = Path(__file__).resolve().parents[3]


def create_fake_stack(bootstrap: str, prefix: str, propagation_delay: float = 0.5) -> FastAPI:
    schemas: dict[str, dict[str, Any]] = {}
    variants: dict[str, dict[str, Any]] = {}
    experiments: dict[str, dict[str, Any]] = {}
    events: dict[str, list[ExecutionEvent]] = defaultdict(list)
    seen: set[str] = set()

    async def consume() -> None:
        consumer = make_consumer(bootstrap, EXECUTIONS.full_name(prefix), group_id=None)
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for r in records:
                        ev = ExecutionEvent.model_validate_json(r.value)
                        if ev.experiment_id and ev.execution_id not in seen:
                            seen.add(ev.execution_id)
                            events[str(ev.experiment_id)].append(ev)
        finally:
            await consumer.stop()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(consume())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/schemas", status_code=201)
    async def create_schema(body: dict[str, Any]) -> dict[str, Any]:
        sid = str(uuid.uuid4())
        # as the control API: "current_version" is the schema version, "version" the row's
        schemas[sid] = {**body, "id": sid, "current_version": 1, "version": 3}
        schemas[body["key"]] = schemas[sid]
        return schemas[sid]

    @app.post("/api/v1/versions/variants", status_code=201)
    async def create_variant(body: dict[str, Any]) -> dict[str, Any]:
        vid = str(uuid.uuid4())
        variants[vid] = {**body, "id": vid, "status": "draft"}
        return variants[vid]

    @app.post("/api/v1/experiments", status_code=201)
    async def create_experiment(body: dict[str, Any]) -> dict[str, Any]:
        eid = str(uuid.uuid4())
        experiments[eid] = {**body, "id": eid, "status": "draft", "serving_at": None}
        return experiments[eid]

    @app.post("/api/v1/experiments/{eid}/start")
    async def start(eid: str) -> dict[str, Any]:
        experiments[eid]["status"] = "running"
        experiments[eid]["serving_at"] = time.monotonic() + propagation_delay
        return experiments[eid]

    @app.post("/api/v1/assign")
    async def assign(body: dict[str, Any]) -> dict[str, Any]:
        schema = schemas.get(body["schema"])
        if schema is None:
            raise HTTPException(404, "unknown schema")
        exp = next(
            (
                e
                for e in experiments.values()
                if e["schema_id"] == schema["id"]
                and e["serving_at"] is not None
                and time.monotonic() >= e["serving_at"]
            ),
            None,
        )
        base = {
            "schema_id": schema["id"],
            "schema_version": 1,
            "variant_id": None,
            "variant_key": None,
            "experiment_id": None,
            "experiment_key": None,
            "in_experiment": False,
            "bucket": None,
            "reason": "default",
            "effective_config": schema["definition"],
        }
        if exp is None:
            return base
        bucket = gb_hash(exp["experiment_key"], body["unit_id"], 2) or 0.0
        arm = exp["variants"][0 if bucket < 0.5 else 1]
        v = variants[arm["variant_id"]]
        return {
            **base,
            "variant_id": v["id"],
            "variant_key": v["variant_key"],
            "experiment_id": exp["id"],
            "experiment_key": exp["experiment_key"],
            "in_experiment": True,
            "bucket": bucket,
            "reason": "experiment",
        }

    def arm_events(eid: str, variant_id: str) -> list[ExecutionEvent]:
        return [e for e in events[eid] if str(e.variant_id) == variant_id]

    @app.get("/api/v1/experiments/{eid}/status")
    async def status(eid: str) -> dict[str, Any]:
        """The analysis service's answer: ``shared.results.analyze`` on the aggregates."""
        exp = experiments[eid]
        record = ExperimentRecord(
            id=uuid.UUID(eid),
            key=exp["experiment_key"],
            name=exp["experiment_name"],
            schema_id=uuid.UUID(exp["schema_id"]),
            status=exp["status"],
            primary_metric=exp["primary_metric"],
            secondary_metrics=tuple(exp["secondary_metrics"]),
            min_sample_size=exp["min_sample_size"],
            confidence_level=exp["confidence_level"],
            significance_threshold=0.05,
            sequential_testing=False,
            sequential_tuning=5000.0,
            minimum_detectable_effect=None,
            started_at=None,
            paused_at=None,
            ended_at=None,
            winning_variant_id=None,
            p_value=None,
            effect_size=None,
        )
        arms = []
        for position, arm in enumerate(exp["variants"]):
            v = variants[arm["variant_id"]]
            evs = arm_events(eid, v["id"])
            durations = [e.duration_ms for e in evs]
            risks = [e.risk_score for e in evs if e.risk_score is not None]
            aggregate = ArmAggregate(
                total_executions=len(evs),
                successful_executions=sum(e.success for e in evs),
                failed_executions=sum(not e.success for e in evs),
                duration_count=len(durations),
                duration_sum=math.fsum(durations),
                duration_sum_sq=math.fsum(d * d for d in durations),
                risk_count=len(risks),
                risk_sum=math.fsum(risks),
                risk_sum_sq=math.fsum(r * r for r in risks),
            )
            arms.append(
                ArmRecord(
                    variant_id=uuid.UUID(v["id"]),
                    variant_key=v["variant_key"],
                    variant_name=v["variant_name"],
                    position=position,
                    is_control=arm["is_control"],
                    traffic_percentage=float(arm["traffic_percentage"]),
                    aggregate=aggregate,
                    exposed_units=len({e.unit_id for e in evs}),
                )
            )
        result = analyze(ExperimentInputs(record, tuple(arms)))
        return result.model_dump(mode="json")

    @app.get("/api/v1/performance/schemas/{sid}/summary")
    async def performance_summary(sid: str) -> dict[str, Any]:
        rows = []
        for eid, exp in experiments.items():
            if exp["schema_id"] != sid:
                continue
            for arm in exp["variants"]:
                v = variants[arm["variant_id"]]
                durations = [e.duration_ms for e in arm_events(eid, v["id"])]
                q = statistics.quantiles(durations, n=100) if len(durations) > 1 else [None] * 99
                rows.append(
                    {
                        "schema_version": 1,
                        "variant_id": v["id"],
                        "variant_key": v["variant_key"],
                        "executions": len(durations),
                        "p50_execution_time_ms": q[49],
                        "p95_execution_time_ms": q[94],
                        "p99_execution_time_ms": q[98],
                    }
                )
        return {"schema_id": sid, "versions": rows}

    return app


class FakeStack:
    """``with FakeStack(bootstrap, prefix, port) as url:`` serves the fake in a child
    process (a thread would share the GIL with the simulator under test)."""

    def __init__(self, bootstrap: str, prefix: str, port: int) -> None:
        self.argv = [
            sys.executable, "-m", "tests.integration.client.fake_stack",
            bootstrap, prefix, str(port),
        ]  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.argv, cwd=ROOT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=0.5).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("fake stack did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


if __name__ == "__main__":
    bootstrap_arg, prefix_arg, port_arg = sys.argv[1:4]
    uvicorn.run(
        create_fake_stack(bootstrap_arg, prefix_arg),
        host="127.0.0.1",
        port=int(port_arg),
        log_level="warning",
    )
