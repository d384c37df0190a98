"""Test data for the analysis service: schemas, variants, experiments, raw executions and
the hourly per-partition aggregates computed from them.

The aggregation here is a deliberately plain, independent re-implementation of what the
aggregator writes (one row per entity, UTC hour and source partition, additive sums, a
DDSketch of the durations in the aggregator's storage format), so that the service is
tested against aggregates derived from raw executions that the test also keeps.
"""

from __future__ import annotations

import math
import random
import struct
import uuid
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from ddsketch import DDSketch

PARTITIONS = 6
TAG = f"an{uuid.uuid4().hex[:6]}"
"""Prefix of every schema and experiment key made here (other tests share the database)."""
DEFINITION = {"workflow_steps": [], "risk_config": {}, "config": {}}


def hour_of(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


# ----------------------------------------------------------------------------- entities


async def create_schema(conn: asyncpg.Connection, key: str, versions: int = 2) -> UUID:
    async with conn.transaction():
        sid: UUID = await conn.fetchval(
            "INSERT INTO workflow_schemas (key, name, current_version) VALUES ($1, $2, $3) "
            "RETURNING id",
            f"{TAG}-{key}",
            f"Schema {key}",
            versions,
        )
        for v in range(1, versions + 1):
            await conn.execute(
                "INSERT INTO workflow_schema_versions (schema_id, version_number, definition) "
                "VALUES ($1, $2, $3)",
                sid,
                v,
                DEFINITION,
            )
    return sid


async def create_variant(
    conn: asyncpg.Connection, schema_id: UUID, key: str, base_version: int = 1
) -> UUID:
    vid: UUID = await conn.fetchval(
        "INSERT INTO schema_variants (schema_id, base_version, variant_key, variant_name) "
        "VALUES ($1, $2, $3, $4) RETURNING id",
        schema_id,
        base_version,
        key,
        f"Variant {key}",
    )
    return vid


@dataclass
class ExperimentSpec:
    key: str
    schema_id: UUID
    arms: list[tuple[UUID, bool, float]]  # (variant_id, is_control, traffic_percentage)
    status: str = "running"
    started_days_ago: float = 5.0
    primary_metric: str = "success_rate"
    secondary_metrics: list[str] = field(default_factory=list)
    min_sample_size: int = 100
    confidence_level: float = 0.95
    sequential_testing: bool = False
    sequential_tuning: int = 5000
    minimum_detectable_effect: float | None = None


async def create_experiment(conn: asyncpg.Connection, spec: ExperimentSpec) -> UUID:
    eid: UUID = await conn.fetchval(
        """
        INSERT INTO experiments (experiment_key, experiment_name, schema_id, primary_metric,
            secondary_metrics, min_sample_size, confidence_level, hash_seed, sequential_testing,
            sequential_tuning, minimum_detectable_effect)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $1, $8, $9, $10) RETURNING id
        """,
        f"{TAG}-{spec.key}",
        f"Experiment {spec.key}",
        spec.schema_id,
        spec.primary_metric,
        spec.secondary_metrics,
        spec.min_sample_size,
        spec.confidence_level,
        spec.sequential_testing,
        spec.sequential_tuning,
        spec.minimum_detectable_effect,
    )
    for pos, (vid, is_control, pct) in enumerate(spec.arms):
        await conn.execute(
            "INSERT INTO experiment_variants (experiment_id, variant_id, position, is_control, "
            "traffic_percentage) VALUES ($1, $2, $3, $4, $5)",
            eid,
            vid,
            pos,
            is_control,
            pct,
        )
    if spec.status in ("running", "paused", "completed", "cancelled"):
        await conn.execute(
            "UPDATE experiments SET status = 'running', "
            "started_at = now() - make_interval(secs => $2) WHERE id = $1",
            eid,
            spec.started_days_ago * 86400.0,
        )
    if spec.status in ("paused", "completed", "cancelled"):
        await conn.execute("UPDATE experiments SET status = $2 WHERE id = $1", eid, spec.status)
    return eid


# ----------------------------------------------------------------------------- executions


@dataclass(frozen=True)
class Execution:
    execution_id: str
    schema_id: UUID
    schema_version: int
    variant_id: UUID | None
    experiment_id: UUID | None
    unit_id: str
    success: bool
    duration_ms: float
    risk_score: float | None
    completed_at: datetime
    partition: int


@dataclass
class ArmProfile:
    """How one arm behaves: success probability, log-normal durations, beta risk scores."""

    p_success: float = 0.9
    duration_median_ms: float = 400.0
    duration_sigma: float = 0.6
    risk_alpha: float = 2.0
    risk_beta: float = 5.0
    risk_missing: float = 0.1
    zero_duration: float = 0.01


def generate(
    rng: random.Random,
    n: int,
    *,
    schema_id: UUID,
    version: int,
    variant_id: UUID | None = None,
    experiment_id: UUID | None = None,
    profile: ArmProfile | None = None,
    days: float = 5.0,
    units: int | None = None,
    now: datetime | None = None,
    unit_prefix: str | None = None,
) -> list[Execution]:
    """``n`` executions completed uniformly over the last ``days`` days (never in the future)."""
    p = profile or ArmProfile()
    now = now or datetime.now(UTC)
    prefix = unit_prefix or uuid.uuid4().hex[:8]
    pool = units or max(1, n // 3)
    out = []
    for _ in range(n):
        completed = now - timedelta(seconds=rng.uniform(60.0, days * 86400.0))
        if rng.random() < p.zero_duration:
            duration = 0.0
        else:
            duration = p.duration_median_ms * math.exp(rng.gauss(0.0, p.duration_sigma))
        risk = None if rng.random() < p.risk_missing else rng.betavariate(p.risk_alpha, p.risk_beta)
        out.append(
            Execution(
                execution_id=uuid.uuid4().hex,
                schema_id=schema_id,
                schema_version=version,
                variant_id=variant_id,
                experiment_id=experiment_id,
                unit_id=f"{prefix}-{rng.randrange(pool)}",
                success=rng.random() < p.p_success,
                duration_ms=duration,
                risk_score=risk,
                completed_at=completed,
                partition=rng.randrange(PARTITIONS),
            )
        )
    return out


async def insert_executions(conn: asyncpg.Connection, execs: Sequence[Execution]) -> None:
    await conn.copy_records_to_table(
        "workflow_executions",
        columns=[
            "execution_id", "schema_id", "schema_version", "variant_id", "experiment_id",
            "unit_id", "success", "duration_ms", "risk_score", "started_at", "completed_at",
            "source_partition",
        ],
        records=[
            (
                e.execution_id, e.schema_id, e.schema_version, e.variant_id, e.experiment_id,
                e.unit_id, e.success, e.duration_ms, e.risk_score,
                e.completed_at - timedelta(milliseconds=e.duration_ms), e.completed_at,
                e.partition,
            )
            for e in execs
        ],
    )  # fmt: skip


# ----------------------------------------------------------------------------- aggregation


def encode_sketch(values: Iterable[float]) -> bytes:
    """A DDSketch (1%, logarithmic mapping) in the aggregator's storage format 1:
    ``b"DS" | u8 1 | f64 0.01 | f64 zero_count | u32 n | n*i32 keys | n*f64 counts``."""
    sk = DDSketch(0.01)
    for v in values:
        sk.add(v)
    store: Any = sk._store
    zero: float = sk._zero_count
    bins = {int(store.offset) + i: float(c) for i, c in enumerate(store.bins) if c}
    keys = sorted(bins)
    head = struct.pack("<2sBddI", b"DS", 1, 0.01, zero, len(keys))
    return (
        head
        + struct.pack(f"<{len(keys)}i", *keys)
        + struct.pack(f"<{len(keys)}d", *(bins[k] for k in keys))
    )


@dataclass
class HourlyRow:
    key: tuple[Any, ...]
    hour: datetime
    partition: int
    total: int = 0
    successes: int = 0
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_sum_sq: float = 0.0
    duration_min: float | None = None
    duration_max: float | None = None
    risk_count: int = 0
    risk_sum: float = 0.0
    risk_sum_sq: float = 0.0
    risk_min: float | None = None
    risk_max: float | None = None
    durations: list[float] = field(default_factory=list)

    def add(self, e: Execution) -> None:
        self.total += 1
        self.successes += 1 if e.success else 0
        d = e.duration_ms
        self.duration_count += 1
        self.duration_sum += d
        self.duration_sum_sq += d * d
        self.duration_min = d if self.duration_min is None else min(self.duration_min, d)
        self.duration_max = d if self.duration_max is None else max(self.duration_max, d)
        self.durations.append(d)
        if e.risk_score is not None:
            r = e.risk_score
            self.risk_count += 1
            self.risk_sum += r
            self.risk_sum_sq += r * r
            self.risk_min = r if self.risk_min is None else min(self.risk_min, r)
            self.risk_max = r if self.risk_max is None else max(self.risk_max, r)

    def values(self) -> tuple[Any, ...]:
        return (
            "hour", self.hour, self.partition, self.total, self.successes,
            self.total - self.successes, self.duration_count, self.duration_sum,
            self.duration_sum_sq, self.duration_min, self.duration_max, self.risk_count,
            self.risk_sum, self.risk_sum_sq, self.risk_min, self.risk_max,
            encode_sketch(self.durations),
        )  # fmt: skip


_METRIC_COLUMNS = [
    "period_type", "period_start", "source_partition", "total_executions",
    "successful_executions", "failed_executions", "duration_count", "duration_sum",
    "duration_sum_sq", "duration_min", "duration_max", "risk_count", "risk_sum", "risk_sum_sq",
    "risk_min", "risk_max", "duration_sketch",
]  # fmt: skip


def hourly(execs: Iterable[Execution], key: Callable[[Execution], Hashable]) -> list[HourlyRow]:
    rows: dict[tuple[Any, ...], HourlyRow] = {}
    for e in execs:
        k = key(e)
        if k is None:
            continue
        kk = (k, hour_of(e.completed_at), e.partition)
        row = rows.get(kk)
        if row is None:
            row = rows[kk] = HourlyRow(k if isinstance(k, tuple) else (k,), kk[1], kk[2])
        row.add(e)
    return list(rows.values())


async def write_aggregates(conn: asyncpg.Connection, execs: Sequence[Execution]) -> None:
    """Hourly rows of both metric tables for ``execs`` (plus the raw rows and exposures)."""
    version_rows = hourly(execs, lambda e: (e.schema_id, e.schema_version, e.variant_id))
    await conn.copy_records_to_table(
        "version_performance_metrics",
        columns=["schema_id", "schema_version", "variant_id", *_METRIC_COLUMNS],
        records=[(*r.key, *r.values()) for r in version_rows],
    )
    exp_rows = hourly(
        execs,
        lambda e: (
            (e.experiment_id, e.variant_id)
            if e.experiment_id is not None and e.variant_id is not None
            else None
        ),
    )
    if exp_rows:
        await conn.copy_records_to_table(
            "experiment_variant_metrics",
            columns=["experiment_id", "variant_id", *_METRIC_COLUMNS],
            records=[(*r.key, *r.values()) for r in exp_rows],
        )


async def write_exposures(conn: asyncpg.Connection, execs: Sequence[Execution]) -> None:
    """First exposure of every unit of an experiment (the unit's first execution)."""
    first: dict[tuple[UUID, str], Execution] = {}
    for e in sorted(execs, key=lambda x: x.completed_at):
        if e.experiment_id is not None and e.variant_id is not None:
            first.setdefault((e.experiment_id, e.unit_id), e)
    if first:
        await conn.copy_records_to_table(
            "experiment_exposures",
            columns=["experiment_id", "unit_id", "variant_id", "first_exposed_at", "bucket"],
            records=[
                (eid, unit, e.variant_id, e.completed_at, 0.5) for (eid, unit), e in first.items()
            ],
        )


async def store(conn: asyncpg.Connection, execs: Sequence[Execution]) -> None:
    """Raw executions, their hourly aggregates and exposures."""
    await insert_executions(conn, execs)
    await write_aggregates(conn, execs)
    await write_exposures(conn, execs)
