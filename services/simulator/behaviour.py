"""The true behaviour of each variant, and sampling one execution's outcome from it.

A behaviour file is JSON::

    {
      "default": {                       # any arm without an entry of its own
        "success_probability": 0.80,
        "duration": {"median_ms": 1200, "sigma": 0.35},
        "risk": {"alpha": 2, "beta": 8},
        "steps": [{"name": "plan", "share": 0.3, "failure_weight": 2}, ...]
      },
      "variants": {"treatment": {...}}   # by variant key; "base" is the base version
    }

Model: success ~ Bernoulli(``success_probability``); duration ~ log-normal with median
``median_ms`` and log-space standard deviation ``sigma`` (mean = median·exp(σ²/2));
risk score ~ Beta(``alpha``, ``beta``) (mean α/(α+β)), omitted without ``risk``. Steps
run in order and split the duration by ``share``; in a failed execution the failing
step is drawn with probability proportional to ``failure_weight``, the steps before it
succeed, it takes the rest of the duration, and the steps after it do not run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BASE_ARM",
    "DEFAULT_BEHAVIOURS",
    "BehaviourSet",
    "DurationBehaviour",
    "Outcome",
    "RiskBehaviour",
    "StepBehaviour",
    "StepOutcome",
    "VariantBehaviour",
    "sample_outcome",
]

BASE_ARM = "base"
"""The arm label of the base version (an assignment without a variant)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DurationBehaviour(_Model):
    median_ms: float = Field(gt=0, le=1e9)
    sigma: float = Field(default=0.3, ge=0, le=5)

    @property
    def mean_ms(self) -> float:
        return self.median_ms * math.exp(self.sigma**2 / 2)


class RiskBehaviour(_Model):
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class StepBehaviour(_Model):
    name: str = Field(min_length=1, max_length=200)
    share: float = Field(default=1.0, gt=0)
    failure_weight: float = Field(default=1.0, ge=0)


class VariantBehaviour(_Model):
    success_probability: float = Field(ge=0, le=1)
    duration: DurationBehaviour
    risk: RiskBehaviour | None = None
    steps: list[StepBehaviour] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _some_step_can_fail(self) -> VariantBehaviour:
        if (
            self.steps
            and self.success_probability < 1
            and not any(s.failure_weight > 0 for s in self.steps)
        ):
            raise ValueError("executions can fail but no step has a failure_weight > 0")
        return self


class BehaviourSet(_Model):
    default: VariantBehaviour
    variants: dict[str, VariantBehaviour] = Field(default_factory=dict)

    def for_arm(self, arm: str) -> VariantBehaviour:
        """The behaviour of ``arm`` (a variant key, or :data:`BASE_ARM`)."""
        return self.variants.get(arm, self.default)

    @classmethod
    def from_file(cls, path: str | Path) -> BehaviourSet:
        return cls.model_validate_json(Path(path).read_text())


_STEPS = [
    StepBehaviour(name="fetch_inputs", share=0.15, failure_weight=1),
    StepBehaviour(name="plan", share=0.25, failure_weight=2),
    StepBehaviour(name="execute", share=0.45, failure_weight=4),
    StepBehaviour(name="review", share=0.15, failure_weight=1),
]

DEFAULT_BEHAVIOURS = BehaviourSet(
    default=VariantBehaviour(
        success_probability=0.80,
        duration=DurationBehaviour(median_ms=1200, sigma=0.35),
        risk=RiskBehaviour(alpha=2, beta=8),
        steps=_STEPS,
    ),
    variants={
        "treatment": VariantBehaviour(
            success_probability=0.85,
            duration=DurationBehaviour(median_ms=1000, sigma=0.35),
            risk=RiskBehaviour(alpha=2, beta=10),
            steps=_STEPS,
        )
    },
)
"""Built in: every arm like a control at 80% success, 1.2 s median, mean risk 0.2,
except ``treatment``: 85% success, 1.0 s median, mean risk 0.167."""


@dataclass(frozen=True, slots=True)
class StepOutcome:
    name: str
    success: bool
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Outcome:
    success: bool
    duration_ms: float
    risk_score: float | None
    steps: tuple[StepOutcome, ...]


def sample_outcome(rng: random.Random, behaviour: VariantBehaviour) -> Outcome:
    """Draw one execution from ``behaviour`` (the draws depend only on ``rng``)."""
    success = rng.random() < behaviour.success_probability
    d = behaviour.duration
    duration = rng.lognormvariate(math.log(d.median_ms), d.sigma) if d.sigma > 0 else d.median_ms
    risk = rng.betavariate(behaviour.risk.alpha, behaviour.risk.beta) if behaviour.risk else None
    steps: list[StepOutcome] = []
    if behaviour.steps:
        failing = -1 if success else _draw_failing_step(rng, behaviour.steps)
        total_share = math.fsum(s.share for s in behaviour.steps)
        used = 0.0
        for i, s in enumerate(behaviour.steps):
            if i == failing:
                steps.append(StepOutcome(s.name, False, max(duration - used, 0.0)))
                break
            part = duration * s.share / total_share
            used += part
            steps.append(StepOutcome(s.name, True, part))
    return Outcome(success, duration, risk, tuple(steps))


def _draw_failing_step(rng: random.Random, steps: list[StepBehaviour]) -> int:
    total = math.fsum(s.failure_weight for s in steps)
    r = rng.random() * total
    acc = 0.0
    last = 0
    for i, s in enumerate(steps):
        if s.failure_weight <= 0:
            continue
        acc += s.failure_weight
        last = i
        if r < acc:
            return i
    return last
