"""Error codes carried by results instead of exceptions.

Every result type has an ``error_code: str | None`` field; ``None`` means the
computation was fully defined. The codes are stable strings meant for APIs and UIs.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Why a result is partly or wholly undefined."""

    INSUFFICIENT_DATA = "insufficient_data"
    """An arm has fewer than 2 observations (or no observations at all)."""
    ZERO_VARIANCE = "zero_variance"
    """The standard error is 0 (constant values, or p in {0, 1} in both arms)."""
    ZERO_BASELINE = "zero_baseline"
    """The baseline mean/rate is 0, so the relative lift is undefined."""
    INVALID_INPUT = "invalid_input"
    """Negative counts, successes > trials, non-finite sums, confidence not in (0, 1), unknown arm."""
    STATS_TYPE_MISMATCH = "stats_type_mismatch"
    """The sufficient statistics do not match the registered metric kind."""
    INVALID_WEIGHTS = "invalid_weights"
    """SRM weights are missing, non-positive, non-finite or of the wrong length."""
    INVALID_EFFECT = "invalid_effect"
    """A minimum detectable effect of 0, or one that moves a rate outside (0, 1)."""
