"""The end-to-end flow against the running stack, through the gateway (HTTP) and Kafka
only: register a schema, two variants and a started 50/50 experiment with the control
API; drive it with the simulator (``services.simulator``, which uses only the public
client: ``POST /api/v1/assign`` through the gateway, execution events to Kafka through
the client's idempotent producer); keep in memory every event the client delivered; poll
``GET /api/v1/experiments/{id}/status`` until the analysis counts all of them.

Each run creates its own schema and experiment under a fresh key (time + random), so the
tests can run again and again against the same stack. Unit ids are NOT unique per run
(``{unit_prefix}-{seed}-{i}``, fixed per flow) and neither is the experiment's
``hash_seed``: together with the simulator's per-execution random streams this makes
the arms and every outcome a function of the seed alone, so a flow's statistics are the
same on every run (see ``AA_FLOW``). Execution ids are unique per run.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from deploy.demo.scenario import BASE_DEFINITION, TREATMENT_OVERRIDES, new_suffix
from services.simulator import BehaviourSet, SimulationConfig, SimulationResult, run_simulation
from shared.client import AbflowClient, AbflowClientError, EventSink
from shared.events import ExecutionEvent
from tests.conftest import KEYS

HOW_TO = (
    "the end-to-end tests need the running stack: start it with `make up`, then "
    "`source .stack/env` (it sets GATEWAY_URL, KAFKA_BOOTSTRAP_SERVERS and the other "
    "*_URL variables)"
)
ANALYSIS_TIMEOUT_S = 60.0
"""How long the analysis may take to count every event after the last one was sent."""
EXPOSURE_GRACE_S = 60.0
"""Exposures are at most once by design (docs/assignment.md); after the executions are
all counted, wait up to this much longer for the exposed units to be all counted too
(polled: returns as soon as they are; generous, because on a loaded machine the exposure
path can lag the executions by many seconds; the tests then assert exact equality)."""
ASSIGNABLE_TIMEOUT_S = 30.0
DELIVERABLE_TYPE = "e2e_report"

_STEPS = [
    {"name": "fetch_inputs", "share": 0.15, "failure_weight": 1},
    {"name": "risk_assessment", "share": 0.20, "failure_weight": 2},
    {"name": "generate", "share": 0.45, "failure_weight": 4},
    {"name": "review", "share": 0.20, "failure_weight": 1},
]


@dataclass(frozen=True)
class Stack:
    gateway: str
    kafka: str
    topic_prefix: str


@dataclass(frozen=True)
class FlowSpec:
    label: str
    behaviours: BehaviourSet
    executions: int
    seed: int
    hash_seed: str
    unit_prefix: str
    treatment_overrides: Mapping[str, Any]
    concurrency: int = 32


AB_FLOW = FlowSpec(
    label="ab",
    # planted: success 0.60 -> 0.80, median (and mean) execution time 30% lower, lower
    # risk. With ~800 executions per arm the success-rate z is about 9.
    behaviours=BehaviourSet.model_validate(
        {
            "default": {
                "success_probability": 0.60,
                "duration": {"median_ms": 1200, "sigma": 0.35},
                "risk": {"alpha": 2, "beta": 8},
                "steps": _STEPS,
            },
            "variants": {
                "treatment": {
                    "success_probability": 0.80,
                    "duration": {"median_ms": 840, "sigma": 0.35},
                    "risk": {"alpha": 2, "beta": 10},
                    "steps": _STEPS,
                }
            },
        }
    ),
    executions=1600,
    seed=20260101,
    hash_seed="e2e-ab-v1",
    unit_prefix="e2e-ab",
    treatment_overrides=TREATMENT_OVERRIDES,
)

AA_FLOW = FlowSpec(
    label="aa",
    # Both arms: the same definition (no overrides) and the same true behaviour.
    # Fixed seed 6 with hash seed "e2e-aa-v1" and units "e2e-aa-6-{i}" (i < 1600): the
    # arms get 781 and 819 executions with 535 and 560 successes (68.5% vs 68.4%),
    # two-proportion p = 0.957; execution time p = 0.84, risk score p = 0.97; SRM
    # p = 0.34. These follow from the seed alone (GrowthBook hash v2 of the unit ids,
    # the simulator's Random(seed * 1e9 + i) per execution), so the A/A assertion
    # (p > alpha) is deterministic, not a 95% chance.
    behaviours=BehaviourSet.model_validate(
        {
            "default": {
                "success_probability": 0.70,
                "duration": {"median_ms": 1000, "sigma": 0.35},
                "risk": {"alpha": 2, "beta": 8},
                "steps": _STEPS,
            }
        }
    ),
    executions=1600,
    seed=6,
    hash_seed="e2e-aa-v1",
    unit_prefix="e2e-aa",
    treatment_overrides={},
)


class RecordingSink:
    """Wraps the client's own Kafka sink and keeps every event Kafka acknowledged."""

    def __init__(self, inner: EventSink) -> None:
        self.inner = inner
        self.events: list[ExecutionEvent] = []

    async def send(self, event: ExecutionEvent, *, wait: bool = True) -> None:
        if not wait:
            raise AssertionError("the e2e flow awaits every event's acknowledgement")
        await self.inner.send(event, wait=True)
        self.events.append(event)

    async def flush(self) -> None:
        await self.inner.flush()

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class FlowRun:
    spec: FlowSpec
    suffix: str
    schema_id: str
    schema_key: str
    experiment_id: str
    variant_ids: dict[str, str]
    """variant key (``control``/``treatment``) -> id"""
    result: SimulationResult
    events: list[ExecutionEvent]
    """Every execution event the client delivered to Kafka in this run."""
    status: dict[str, Any]
    """The final ``GET /api/v1/experiments/{id}/status``."""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def control_id(self) -> str:
        return self.variant_ids["control"]

    @property
    def treatment_id(self) -> str:
        return self.variant_ids["treatment"]

    def experiment_events(self) -> list[ExecutionEvent]:
        return [e for e in self.events if str(e.experiment_id) == self.experiment_id]

    def events_of(self, variant_id: str) -> list[ExecutionEvent]:
        return [e for e in self.experiment_events() if str(e.variant_id) == variant_id]

    def variant_status(self, variant_id: str) -> dict[str, Any]:
        for v in self.status["variants"]:
            if v["variant_id"] == variant_id:
                return dict(v)
        raise AssertionError(f"variant {variant_id} not in the status: {self.status['variants']}")

    def treatment_metric(self, metric: str) -> dict[str, Any]:
        result = self.variant_status(self.treatment_id)["metrics"].get(metric)
        assert result is not None, f"no {metric} comparison for the treatment"
        return dict(result)

    def timing_line(self) -> str:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
        return f"{self.spec.label}: {len(self.events)} events; {parts}"


def stack_from_env() -> Stack:
    gateway = os.environ.get("GATEWAY_URL", "").strip().rstrip("/")
    if not gateway:
        pytest.fail(f"GATEWAY_URL is not set: {HOW_TO}", pytrace=False)
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if not kafka:
        pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS is not set: {HOW_TO}", pytrace=False)
    for path in ("/health", "/health/assignment", "/health/analysis"):
        try:
            resp = httpx.get(f"{gateway}{path}", timeout=10)
        except httpx.HTTPError as exc:
            pytest.fail(f"{gateway}{path} does not answer ({exc!r}): {HOW_TO}", pytrace=False)
        if resp.status_code != 200:
            pytest.fail(
                f"{gateway}{path} answers HTTP {resp.status_code}: {resp.text[:300]} ({HOW_TO})",
                pytrace=False,
            )
    return Stack(gateway, kafka, os.environ.get("TOPIC_PREFIX", ""))


async def _post(http: httpx.AsyncClient, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    resp = await http.post(path, json=dict(payload))
    assert resp.status_code in (200, 201), (
        f"POST {path} -> HTTP {resp.status_code}: {resp.text[:500]}"
    )
    assert resp.headers.get("x-abflow-service") == "assignment", resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    return body


async def create_experiment(
    http: httpx.AsyncClient, spec: FlowSpec, suffix: str
) -> tuple[str, str, dict[str, str], str]:
    """Schema (version 1), variants ``control`` (the base as is) and ``treatment``
    (``spec.treatment_overrides``), a 50/50 experiment between them, started. Returns
    (schema id, schema key, variant ids by key, experiment id)."""
    schema_key = f"e2e-{spec.label}-{suffix}"
    schema = await _post(
        http,
        "/api/v1/schemas",
        {
            "key": schema_key,
            "name": f"E2E {spec.label} workflow ({suffix})",
            "deliverable_type": DELIVERABLE_TYPE,
            "definition": BASE_DEFINITION,
        },
    )
    schema_id = str(schema["id"])
    assert schema["current_version"] == 1, schema
    variant_ids: dict[str, str] = {}
    for key, overrides in (("control", {}), ("treatment", spec.treatment_overrides)):
        body = await _post(
            http,
            "/api/v1/versions/variants",
            {
                "schema_id": schema_id,
                "base_version": 1,
                "variant_key": key,
                "variant_name": f"{key} ({spec.label})",
                "config_overrides": {},
                "traffic_allocation": 0,  # experiment arms only, no rollout
                **overrides,
            },
        )
        variant_ids[key] = str(body["id"])
    exp = await _post(
        http,
        "/api/v1/experiments",
        {
            "experiment_key": f"e2e-{spec.label}-{suffix}",
            "experiment_name": f"E2E {spec.label} ({suffix})",
            "hypothesis": "end-to-end test",
            "schema_id": schema_id,
            "deliverable_type": DELIVERABLE_TYPE,
            "primary_metric": "success_rate",
            "secondary_metrics": ["execution_time", "risk_score"],
            "min_sample_size": 100,
            "confidence_level": 0.95,
            "hash_seed": spec.hash_seed,
            "coverage": 1.0,
            "variants": [
                {
                    "variant_id": variant_ids["control"],
                    "is_control": True,
                    "traffic_percentage": 50,
                },
                {
                    "variant_id": variant_ids["treatment"],
                    "is_control": False,
                    "traffic_percentage": 50,
                },
            ],
        },
    )
    experiment_id = str(exp["id"])
    started = await _post(http, f"/api/v1/experiments/{experiment_id}/start", {})
    assert started["status"] == "running", started
    return schema_id, schema_key, variant_ids, experiment_id


async def wait_assignable(
    stack: Stack, schema_key: str, experiment_id: str, probe_unit: str
) -> None:
    """Until the assignment service serves the new experiment (the config travels
    through the outbox and the config topic). The probe is a unit of the simulation, so
    it adds no exposure of its own."""
    deadline = time.monotonic() + ASSIGNABLE_TIMEOUT_S
    last = "no answer"
    async with AbflowClient(stack.gateway, cache_ttl=0, learn_fallbacks=False, timeout=2.0) as c:
        while time.monotonic() < deadline:
            try:
                a = await c.assign(schema_key, probe_unit)
                if a.in_experiment and str(a.experiment_id) == experiment_id:
                    return
                last = f"reason {a.reason!r}, experiment {a.experiment_id}"
            except AbflowClientError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    pytest.fail(
        f"the assignment service does not serve experiment {experiment_id} after "
        f"{ASSIGNABLE_TIMEOUT_S:.0f} s ({last})"
    )


async def simulate(
    stack: Stack, spec: FlowSpec, schema_key: str
) -> tuple[SimulationResult, list[ExecutionEvent]]:
    config = SimulationConfig(
        schema=schema_key,
        executions=spec.executions,
        concurrency=spec.concurrency,
        seed=spec.seed,
        unit_prefix=spec.unit_prefix,
        run_id=f"e2e-{spec.label}-{uuid.uuid4().hex[:12]}",
    )
    async with AbflowClient(
        stack.gateway,
        kafka_bootstrap=stack.kafka,
        topic_prefix=stack.topic_prefix,
        timeout=2.0,  # generous: this is no latency test, and a fallback would spoil it
        learn_fallbacks=False,
    ) as client:
        sink = RecordingSink(client.sink)
        client.sink = sink
        result = await run_simulation(client, config, spec.behaviours)
    return result, sink.events


async def fetch_status(http: httpx.AsyncClient, experiment_id: str) -> dict[str, Any]:
    # no-cache: count the exposed units now rather than from the analysis' TTL cache
    resp = await http.get(
        f"/api/v1/experiments/{experiment_id}/status", headers={"Cache-Control": "no-cache"}
    )
    assert resp.status_code == 200, f"status -> HTTP {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("x-abflow-service") == "analysis", resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    return body


async def wait_analysed(
    http: httpx.AsyncClient, experiment_id: str, expected_n: int, expected_units: int
) -> tuple[dict[str, Any], float, float]:
    """Poll the status until it counts ``expected_n`` executions (fail on more, or when
    ``ANALYSIS_TIMEOUT_S`` passes), then up to ``EXPOSURE_GRACE_S`` more until it counts
    ``expected_units`` exposed units. Returns (status, seconds for the executions,
    seconds for the exposures)."""
    t0 = time.monotonic()
    status: dict[str, Any] = {}
    n: int | None = None
    while True:
        status = await fetch_status(http, experiment_id)
        n = status.get("total_executions")
        assert n is None or n <= expected_n, (
            f"the analysis counts {n} executions, more than the {expected_n} sent"
        )
        if n == expected_n:
            break
        if time.monotonic() - t0 > ANALYSIS_TIMEOUT_S:
            pytest.fail(
                f"the analysis counts {n} of the {expected_n} executions sent after "
                f"{ANALYSIS_TIMEOUT_S:.0f} s (is the aggregator running?)"
            )
        await asyncio.sleep(0.5)
    t_exec = time.monotonic() - t0
    while (status.get("exposed_units") or 0) < expected_units:
        if time.monotonic() - t0 - t_exec > EXPOSURE_GRACE_S:
            break  # asserted (or not) by the tests: exposures are at most once
        await asyncio.sleep(0.5)
        status = await fetch_status(http, experiment_id)
    return status, t_exec, time.monotonic() - t0 - t_exec


async def run_flow(stack: Stack, spec: FlowSpec) -> FlowRun:
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    suffix = new_suffix()
    async with httpx.AsyncClient(
        base_url=stack.gateway, timeout=15, headers=KEYS.headers("admin")
    ) as http:
        schema_id, schema_key, variant_ids, experiment_id = await create_experiment(
            http, spec, suffix
        )
        timings["setup"] = time.monotonic() - t0
        t = time.monotonic()
        probe = SimulationConfig(
            schema=schema_key, executions=1, seed=spec.seed, unit_prefix=spec.unit_prefix
        ).unit_id(0)
        await wait_assignable(stack, schema_key, experiment_id, probe)
        timings["assignable"] = time.monotonic() - t
        t = time.monotonic()
        result, events = await simulate(stack, spec, schema_key)
        timings["simulate"] = time.monotonic() - t
        assert result.failed == 0, (
            f"{result.assign_errors} assignments and {result.emit_errors} emissions failed"
        )
        assert len(events) == result.sent == spec.executions
        assert Counter(e.assignment_reason for e in events) == {"experiment": spec.executions}
        in_experiment = [e for e in events if str(e.experiment_id) == experiment_id]
        assert len(in_experiment) == result.sent_in_experiment(experiment_id) == spec.executions
        units = {e.unit_id for e in in_experiment}
        status, t_exec, t_exp = await wait_analysed(
            http, experiment_id, len(in_experiment), len(units)
        )
        timings["analysed"] = t_exec
        timings["exposures"] = t_exp
    timings["total"] = time.monotonic() - t0
    return FlowRun(
        spec=spec,
        suffix=suffix,
        schema_id=schema_id,
        schema_key=schema_key,
        experiment_id=experiment_id,
        variant_ids=variant_ids,
        result=result,
        events=events,
        status=status,
        timings=timings,
    )
