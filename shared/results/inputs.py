"""Loading an experiment's analysis inputs: settings, arms, summed metrics, exposures.

One query returns the experiment, its arms and, per arm, the sums of its hourly
``experiment_variant_metrics`` rows (all hours, all partitions: the cost depends on hours ×
partitions, never on the number of executions); a second one counts the distinct exposed
units per arm (``experiment_exposures``, one index entry per unit), unless the caller
passes counts it cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.results.aggregates import STAT_SUM_COLUMNS, ArmAggregate, Queryable

__all__ = [
    "ArmRecord",
    "ExperimentInputs",
    "ExperimentRecord",
    "ExposureCounts",
    "fetch_exposure_counts",
    "fetch_inputs",
]


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    """The columns of ``experiments`` the analysis uses."""

    id: UUID
    key: str
    name: str
    schema_id: UUID
    status: str
    primary_metric: str
    secondary_metrics: tuple[str, ...]
    min_sample_size: int
    confidence_level: float
    significance_threshold: float
    sequential_testing: bool
    sequential_tuning: float
    minimum_detectable_effect: float | None
    started_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    winning_variant_id: UUID | None
    p_value: float | None
    effect_size: float | None


@dataclass(frozen=True, slots=True)
class ArmRecord:
    """One arm with its summed metrics and exposed units."""

    variant_id: UUID
    variant_key: str | None
    variant_name: str | None
    position: int
    is_control: bool
    traffic_percentage: float
    aggregate: ArmAggregate
    exposed_units: int


@dataclass(frozen=True, slots=True)
class ExperimentInputs:
    experiment: ExperimentRecord
    arms: tuple[ArmRecord, ...]


_INPUTS_SQL = f"""
SELECT e.id, e.experiment_key, e.experiment_name, e.schema_id, e.status, e.primary_metric,
       e.secondary_metrics, e.min_sample_size, e.confidence_level::float8 AS confidence_level,
       e.significance_threshold::float8 AS significance_threshold, e.sequential_testing,
       e.sequential_tuning, e.minimum_detectable_effect, e.started_at, e.paused_at, e.ended_at,
       e.winning_variant_id, e.p_value, e.effect_size,
       ev.variant_id, ev.position, ev.is_control,
       ev.traffic_percentage::float8 AS traffic_percentage, sv.variant_key, sv.variant_name,
       s.*
  FROM experiments e
  LEFT JOIN experiment_variants ev ON ev.experiment_id = e.id
  LEFT JOIN schema_variants sv ON sv.id = ev.variant_id
  LEFT JOIN LATERAL (
        SELECT {STAT_SUM_COLUMNS}
          FROM experiment_variant_metrics m
         WHERE m.experiment_id = ev.experiment_id AND m.variant_id = ev.variant_id
           AND m.period_type = 'hour') s ON ev.variant_id IS NOT NULL
 WHERE e.id = ANY($1::uuid[])
 ORDER BY e.id, ev.position
"""

_EXPOSURES_SQL = """
SELECT x.experiment_id, x.variant_id, count(*)::bigint AS units
  FROM experiment_exposures x
 WHERE x.experiment_id = ANY($1::uuid[])
 GROUP BY x.experiment_id, x.variant_id
"""

ExposureCounts = dict[UUID, dict[UUID, int]]
"""experiment id → variant id → distinct exposed units."""


def _experiment_record(row: Any) -> ExperimentRecord:
    return ExperimentRecord(
        id=row["id"],
        key=row["experiment_key"],
        name=row["experiment_name"],
        schema_id=row["schema_id"],
        status=row["status"],
        primary_metric=row["primary_metric"],
        secondary_metrics=tuple(row["secondary_metrics"] or ()),
        min_sample_size=int(row["min_sample_size"]),
        confidence_level=float(row["confidence_level"]),
        significance_threshold=float(row["significance_threshold"]),
        sequential_testing=bool(row["sequential_testing"]),
        sequential_tuning=float(row["sequential_tuning"]),
        minimum_detectable_effect=row["minimum_detectable_effect"],
        started_at=row["started_at"],
        paused_at=row["paused_at"],
        ended_at=row["ended_at"],
        winning_variant_id=row["winning_variant_id"],
        p_value=row["p_value"],
        effect_size=row["effect_size"],
    )


def _arm_record(row: Any, units: int) -> ArmRecord:
    return ArmRecord(
        variant_id=row["variant_id"],
        variant_key=row["variant_key"],
        variant_name=row["variant_name"],
        position=int(row["position"]),
        is_control=bool(row["is_control"]),
        traffic_percentage=float(row["traffic_percentage"]),
        aggregate=ArmAggregate.from_record(row),
        exposed_units=units,
    )


async def fetch_exposure_counts(db: Queryable, ids: Sequence[UUID]) -> ExposureCounts:
    """Distinct exposed units per arm (this reads one index entry per unit: O(units))."""
    out: ExposureCounts = {i: {} for i in ids}
    if ids:
        for r in await db.fetch(_EXPOSURES_SQL, list(ids)):
            out.setdefault(r["experiment_id"], {})[r["variant_id"]] = int(r["units"])
    return out


async def fetch_inputs(
    db: Queryable, ids: Sequence[UUID], exposures: ExposureCounts | None = None
) -> dict[UUID, ExperimentInputs]:
    """Experiment settings and per-arm aggregates of ``ids`` (unknown ids are absent).

    One query for the experiments, their arms and the arms' summed hourly rows; the
    exposed units are counted by a second query unless ``exposures`` already holds them
    for every id (the analysis service caches them briefly).
    """
    if not ids:
        return {}
    id_list = list(ids)
    rows = await db.fetch(_INPUTS_SQL, id_list)
    if exposures is None or any(i not in exposures for i in id_list):
        fresh = await fetch_exposure_counts(db, id_list)
        exposures = {**(exposures or {}), **fresh}
    experiments: dict[UUID, ExperimentRecord] = {}
    arms: dict[UUID, list[ArmRecord]] = {}
    for row in rows:
        eid = row["id"]
        if eid not in experiments:
            experiments[eid] = _experiment_record(row)
            arms[eid] = []
        if row["variant_id"] is not None:
            units = exposures.get(eid, {}).get(row["variant_id"], 0)
            arms[eid].append(_arm_record(row, units))
    return {i: ExperimentInputs(e, tuple(arms[i])) for i, e in experiments.items()}
