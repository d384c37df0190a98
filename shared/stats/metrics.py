"""Metric registry: metric name → (kind, direction).

``success_rate`` is a proportion where higher is better; ``execution_time`` (ms) and
``risk_score`` are continuous where lower is better.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from shared.stats._json import JsonResult


class MetricKind(StrEnum):
    """Which test applies: two-proportion z-test or Welch's t-test."""

    PROPORTION = "proportion"
    CONTINUOUS = "continuous"


class Direction(StrEnum):
    """Which sign of (comparison − baseline) is an improvement."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


@dataclass(frozen=True, slots=True)
class MetricSpec(JsonResult):
    """A registered metric."""

    name: str
    kind: MetricKind
    direction: Direction


DEFAULT_METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        "success_rate": MetricSpec(
            "success_rate", MetricKind.PROPORTION, Direction.HIGHER_IS_BETTER
        ),
        "execution_time": MetricSpec(
            "execution_time", MetricKind.CONTINUOUS, Direction.LOWER_IS_BETTER
        ),
        "risk_score": MetricSpec("risk_score", MetricKind.CONTINUOUS, Direction.LOWER_IS_BETTER),
    }
)
"""Built-in metrics of the platform."""


def get_metric_spec(
    name: str, registry: Mapping[str, MetricSpec] | None = None
) -> MetricSpec | None:
    """Look ``name`` up in ``registry`` (default :data:`DEFAULT_METRICS`); None if unknown."""
    return (DEFAULT_METRICS if registry is None else registry).get(name)


def is_improvement(direction: Direction | None, difference: float | None) -> bool | None:
    """True if ``difference`` (comparison − baseline) moves the metric the good way,
    False if the bad way, None when the direction is unknown or the difference is 0/None."""
    if direction is None or difference is None or difference == 0.0:
        return None
    if direction is Direction.HIGHER_IS_BETTER:
        return difference > 0.0
    return difference < 0.0
