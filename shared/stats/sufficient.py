"""Sufficient statistics that add across hours, partitions and workers.

``MeanStats(n, sum, sum_sq)`` summarises a continuous metric and
``ProportionStats(successes, trials)`` a binary one; both are frozen and support ``+``,
so hourly or per-partition rows can be reduced with ``functools.reduce(operator.add, rows)``
or ``sum(rows, MeanStats())``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from shared.stats._json import JsonResult

_EPS = sys.float_info.epsilon
# Sums of squared deviations below this fraction of sum_sq are rounding noise of
# sum_sq − sum²/n (coefficient of variation < ~1e-7) and are treated as exactly 0.
_CANCELLATION_FLOOR = 64.0 * _EPS
_MAX_COUNT = 2**53  # counts must be exactly representable as floats


@dataclass(frozen=True, slots=True)
class MeanStats(JsonResult):
    """Count, sum and sum of squares of a continuous metric.

    mean = sum / n;  sample variance s² = (sum_sq − sum²/n) / (n − 1), clamped at 0.
    """

    n: int = 0
    sum: float = 0.0
    sum_sq: float = 0.0

    def __add__(self, other: MeanStats) -> MeanStats:
        if not isinstance(other, MeanStats):
            return NotImplemented
        return MeanStats(self.n + other.n, self.sum + other.sum, self.sum_sq + other.sum_sq)

    def __radd__(self, other: object) -> MeanStats:
        """Lets ``sum(rows)`` start from the integer 0."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    @classmethod
    def from_values(cls, values: Iterable[float]) -> MeanStats:
        """Exact-as-possible statistics of raw values (``math.fsum`` for both sums)."""
        xs = [float(v) for v in values]
        try:
            return cls(len(xs), math.fsum(xs), math.fsum(x * x for x in xs))
        except (OverflowError, ValueError):  # inf/nan/overflowing data: an invalid MeanStats
            return cls(len(xs), sum(xs), sum(x * x for x in xs))

    @property
    def is_valid(self) -> bool:
        """0 ≤ n ≤ 2⁵³, finite sums, non-negative sum of squares."""
        return (
            0 <= self.n <= _MAX_COUNT
            and math.isfinite(self.sum)
            and math.isfinite(self.sum_sq)
            and self.sum_sq >= 0.0
        )

    @property
    def mean(self) -> float | None:
        """sum / n, or None when n == 0."""
        if self.n <= 0 or not self.is_valid:
            return None
        return self.sum / self.n

    @property
    def sum_sq_dev(self) -> float | None:
        """Σ(x − x̄)² = sum_sq − sum²/n, clamped at 0; None when n == 0."""
        if self.n <= 0 or not self.is_valid:
            return None
        ss = self.sum_sq - self.sum * (self.sum / self.n)
        if ss <= _CANCELLATION_FLOOR * self.sum_sq:
            return 0.0
        return ss

    @property
    def variance(self) -> float | None:
        """Unbiased sample variance Σ(x − x̄)² / (n − 1); None when n < 2."""
        ss = self.sum_sq_dev
        if ss is None or self.n < 2:
            return None
        return ss / (self.n - 1)

    @property
    def sd(self) -> float | None:
        """Sample standard deviation √s²; None when n < 2."""
        v = self.variance
        return None if v is None else math.sqrt(v)


@dataclass(frozen=True, slots=True)
class ProportionStats(JsonResult):
    """Successes out of trials for a binary metric.

    rate p = successes / trials;  Bernoulli variance p(1 − p) (the plug-in variance used
    by the unpooled standard error and the delta method).
    """

    successes: int = 0
    trials: int = 0

    def __add__(self, other: ProportionStats) -> ProportionStats:
        if not isinstance(other, ProportionStats):
            return NotImplemented
        return ProportionStats(self.successes + other.successes, self.trials + other.trials)

    def __radd__(self, other: object) -> ProportionStats:
        """Lets ``sum(rows)`` start from the integer 0."""
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    @classmethod
    def from_values(cls, values: Iterable[bool | int | float]) -> ProportionStats:
        """Count truthy values as successes and all values as trials."""
        successes = 0
        trials = 0
        for v in values:
            trials += 1
            successes += 1 if v else 0
        return cls(successes, trials)

    @property
    def n(self) -> int:
        """Number of trials (sample size)."""
        return self.trials

    @property
    def is_valid(self) -> bool:
        """0 ≤ successes ≤ trials ≤ 2⁵³."""
        return 0 <= self.successes <= self.trials <= _MAX_COUNT

    @property
    def mean(self) -> float | None:
        """successes / trials, or None when trials == 0."""
        if self.trials <= 0 or not self.is_valid:
            return None
        return self.successes / self.trials

    rate = mean

    @property
    def variance(self) -> float | None:
        """Bernoulli variance p(1 − p); None when trials == 0."""
        p = self.mean
        return None if p is None else p * (1.0 - p)

    @property
    def sd(self) -> float | None:
        """√(p(1 − p)); None when trials == 0."""
        v = self.variance
        return None if v is None else math.sqrt(v)


MetricStats = MeanStats | ProportionStats
"""Either kind of sufficient statistic."""
