"""JSON-safe pydantic models shared by the analysis API and the control plane.

Every float field goes through :data:`Finite`: NaN and ±Infinity become ``None`` at
validation, so no response or stored ``jsonb`` ever contains a non-finite number.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

from shared.stats import MetricComparison, SrmResult

__all__ = [
    "ArmSummaryModel",
    "Finite",
    "MetricResult",
    "ResultModel",
    "SrmModel",
    "finite",
]


def finite(x: float | None) -> float | None:
    """``x`` as a float when finite, else ``None``."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


Finite = Annotated[float | None, AfterValidator(finite)]
"""An optional float that is never NaN or Infinity."""


class ResultModel(BaseModel):
    """Base of every result model: immutable, JSON-safe."""

    model_config = ConfigDict(frozen=True, ser_json_inf_nan="null")


class ArmSummaryModel(ResultModel):
    """Size, location and spread of one arm for one metric (``mean`` = rate for proportions)."""

    n: int
    mean: Finite = None
    sd: Finite = None


class MetricResult(ResultModel):
    """One metric, comparison arm against baseline arm.

    ``difference`` is the estimate (comparison − baseline) with its confidence interval
    ``[ci_low, ci_high]``; ``relative_lift`` = difference / baseline with a delta-method CI;
    ``p_value_adjusted`` is the Holm-adjusted p-value when several treatments face one
    control (otherwise equal to ``p_value``) and ``is_significant`` = p_value_adjusted < α.
    ``error_code`` says why fields are ``None`` (``insufficient_data``, ``zero_variance``...).
    """

    metric: str
    kind: str
    direction: str | None
    method: str
    baseline: ArmSummaryModel
    comparison: ArmSummaryModel
    difference: Finite = None
    ci_low: Finite = None
    ci_high: Finite = None
    relative_lift: Finite = None
    lift_ci_low: Finite = None
    lift_ci_high: Finite = None
    p_value: Finite = None
    p_value_adjusted: Finite = None
    statistic: Finite = None
    df: Finite = None
    effect_size: Finite = None
    effect_size_name: str
    is_significant: bool
    direction_good: bool | None
    confidence_level: float
    sequential: bool
    error_code: str | None = None

    @classmethod
    def of(cls, comparison: MetricComparison) -> MetricResult:
        """Convert an engine result."""
        return cls.model_validate(comparison.to_dict())


class SrmModel(ResultModel):
    """Sample-ratio-mismatch check: χ² of exposed units per arm against the configured split."""

    observed: list[int]
    expected: list[Finite]
    statistic: Finite = None
    df: int
    p_value: Finite = None
    is_mismatch: bool
    threshold: float
    error_code: str | None = None

    @classmethod
    def of(cls, srm: SrmResult) -> SrmModel:
        data: dict[str, Any] = srm.to_dict()
        return cls.model_validate(data)
