"""A fleet of synthetic orchestrators: ``concurrency`` workers that each assign a unit,
"run" the assigned version by sampling its true behaviour, and emit the execution event,
through the public client only (:class:`shared.client.AbflowClient`).

Deterministic for a seed: execution ``i`` uses unit ``{unit_prefix}-{seed}-{i}`` (or
``i % units`` when units are reused) and draws its outcome from its own random stream
``Random(seed * 10**9 + i)``, whatever the concurrency and scheduling. Execution ids
are ``{run_id}-{i}``; the run id is random unless given, so two runs never share an
execution id (the aggregator would count the second one as a duplicate).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.client import AbflowClient, AbflowClientError, Assignment
from shared.events import StepResult

from .behaviour import BehaviourSet, Outcome, sample_outcome
from .progress import ProgressBar

__all__ = ["ArmTally", "SimulationConfig", "SimulationResult", "run_simulation"]

_STREAM_STRIDE = 10**9


@dataclass(frozen=True)
class SimulationConfig:
    schema: str
    executions: int
    rate: float = 0.0
    """Target executions per second over the whole fleet; 0 = as fast as possible."""
    concurrency: int = 32
    seed: int = 1
    units: int | None = None
    """Number of distinct unit ids to cycle through; None = a new unit per execution."""
    unit_prefix: str = "unit"
    run_id: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.executions < 0 or self.executions >= _STREAM_STRIDE:
            raise ValueError("executions must be in [0, 1e9)")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.rate < 0:
            raise ValueError("rate must be >= 0")
        if self.units is not None and self.units < 1:
            raise ValueError("units must be >= 1")

    def unit_id(self, i: int) -> str:
        n = i if self.units is None else i % self.units
        return f"{self.unit_prefix}-{self.seed}-{n}"

    def rng(self, i: int) -> random.Random:
        return random.Random(self.seed * _STREAM_STRIDE + i)


@dataclass
class ArmTally:
    """What was sent for one arm (a variant key, or ``base``)."""

    sent: int = 0
    successes: int = 0
    duration_sum: float = 0.0
    risk_sum: float = 0.0
    risk_n: int = 0

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        self.successes += outcome.success
        self.duration_sum += outcome.duration_ms
        if outcome.risk_score is not None:
            self.risk_sum += outcome.risk_score
            self.risk_n += 1

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.sent if self.sent else None

    @property
    def mean_duration_ms(self) -> float | None:
        return self.duration_sum / self.sent if self.sent else None

    @property
    def mean_risk(self) -> float | None:
        return self.risk_sum / self.risk_n if self.risk_n else None


@dataclass
class SimulationResult:
    run_id: str
    requested: int
    sent: int = 0
    assign_errors: int = 0
    emit_errors: int = 0
    elapsed_s: float = 0.0
    by_arm: dict[str, ArmTally] = field(default_factory=dict)
    by_reason: Counter[str] = field(default_factory=Counter)
    by_experiment: Counter[str] = field(default_factory=Counter)
    """Events sent per experiment id (``"none"`` for events outside any experiment)."""
    by_experiment_arm: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def failed(self) -> int:
        return self.assign_errors + self.emit_errors

    def sent_in_experiment(self, experiment_id: str) -> int:
        return self.by_experiment[str(experiment_id)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "requested": self.requested,
            "sent": self.sent,
            "assign_errors": self.assign_errors,
            "emit_errors": self.emit_errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "by_arm": {
                arm: {
                    "sent": t.sent,
                    "success_rate": t.success_rate,
                    "mean_duration_ms": t.mean_duration_ms,
                    "mean_risk_score": t.mean_risk,
                }
                for arm, t in sorted(self.by_arm.items())
            },
            "by_reason": dict(self.by_reason),
            "by_experiment": dict(self.by_experiment),
        }


async def run_simulation(
    client: AbflowClient,
    config: SimulationConfig,
    behaviours: BehaviourSet,
    *,
    progress: ProgressBar | None = None,
) -> SimulationResult:
    """Run ``config.executions`` synthetic executions and tally what was sent."""
    run_id = config.run_id or f"sim-{uuid.uuid4().hex[:12]}"
    result = SimulationResult(run_id=run_id, requested=config.executions)
    next_index = 0
    t0 = time.monotonic()
    attributes = dict(config.attributes)

    async def one(i: int) -> None:
        unit = config.unit_id(i)
        try:
            assignment = await client.assign(config.schema, unit, attributes)
        except AbflowClientError:
            result.assign_errors += 1
            return
        outcome = sample_outcome(config.rng(i), behaviours.for_arm(assignment.arm))
        if await _emit(client, assignment, outcome, f"{run_id}-{i}", unit):
            _tally(result, assignment, outcome)
        else:
            result.emit_errors += 1

    async def worker() -> None:
        nonlocal next_index
        while next_index < config.executions:
            i = next_index
            next_index += 1
            if config.rate > 0:
                delay = t0 + i / config.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await one(i)
            if progress is not None:
                progress.update(1)

    workers = min(config.concurrency, max(config.executions, 1))
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
        await client.flush()
    finally:
        result.elapsed_s = time.monotonic() - t0
        if progress is not None:
            progress.close()
    return result


async def _emit(
    client: AbflowClient, assignment: Assignment, outcome: Outcome, execution_id: str, unit: str
) -> bool:
    completed = datetime.now(UTC)
    try:
        await client.emit_execution(
            assignment,
            success=outcome.success,
            duration_ms=outcome.duration_ms,
            execution_id=execution_id,
            unit_id=unit,
            risk_score=outcome.risk_score,
            steps=[
                StepResult(name=s.name, success=s.success, duration_ms=s.duration_ms)
                for s in outcome.steps
            ],
            started_at=completed - timedelta(milliseconds=outcome.duration_ms),
            completed_at=completed,
        )
    except AbflowClientError:
        return False
    return True


def _tally(result: SimulationResult, assignment: Assignment, outcome: Outcome) -> None:
    arm = assignment.arm
    result.sent += 1
    result.by_arm.setdefault(arm, ArmTally()).add(outcome)
    result.by_reason[assignment.reason] += 1
    exp = str(assignment.experiment_id) if assignment.experiment_id else "none"
    result.by_experiment[exp] += 1
    result.by_experiment_arm[(exp, arm)] += 1
