"""Winner determination when an experiment completes.

The verdict (winner, p-value, effect size, the full result) comes from the analysis
engine, :func:`shared.results.experiment.determine_winner`: it sums the experiment's
hourly aggregates and exposures (two queries, cost independent of the number of
executions) and runs the statistics. It runs on the completing transaction's connection
inside a savepoint: should the analysis fail, the experiment still completes (end time
and status recorded, no verdict) and the failure is logged; the analysis service can
compute the result at any time from the same data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from shared.results.experiment import determine_winner as analyse_and_decide

log = logging.getLogger(__name__)

__all__ = ["WinnerResult", "determine_winner"]


@dataclass(frozen=True, slots=True)
class WinnerResult:
    """What completing an experiment stores in ``experiments``."""

    winning_variant_id: UUID | None
    p_value: float | None
    effect_size: float | None
    results: dict[str, Any] = field(default_factory=dict)


async def determine_winner(conn: asyncpg.Connection, experiment_id: UUID) -> WinnerResult | None:
    """The verdict for ``experiment_id`` (None when the analysis could not run)."""
    try:
        async with conn.transaction():  # a savepoint: a failure leaves the outer transaction usable
            decision = await analyse_and_decide(conn, experiment_id)
    except Exception:  # completing must not depend on the analysis succeeding
        log.exception("winner determination failed for experiment %s", experiment_id)
        return None
    return WinnerResult(
        winning_variant_id=decision.winner_variant_id,
        p_value=decision.p_value,
        effect_size=decision.effect_size,
        results=decision.results,
    )
