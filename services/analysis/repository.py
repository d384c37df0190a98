"""SQL of the analysis service. Every metric query sums hourly rows IN the database.

The metric tables hold one row per (entity, UTC hour, source partition) with additive
statistics; queries filter ``period_type = 'hour'`` and a range of ``period_start``
(index ``version_performance_metrics_range_idx``) and return the sums, so their cost
grows with hours × partitions × entities of the period, never with the number of
executions. Raw ``workflow_executions`` are never read here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from services.analysis.periods import BASE, VariantFilter, Window
from shared.results import STAT_SUM_COLUMNS, SUM_COLUMNS, ArmAggregate, Queryable

__all__ = [
    "ArmSpec",
    "CompareTargets",
    "GroupedAggregate",
    "active_experiment_ids",
    "compare_aggregates",
    "compare_targets",
    "comparison_by_id",
    "dashboard_counts",
    "dashboard_performance",
    "experiment_page",
    "insert_comparison",
    "metric_period_aggregates",
    "recent_comparisons",
    "running_experiments",
    "schema_row",
    "summary_aggregates",
    "top_schemas",
    "trend_aggregates",
    "variant_rows",
    "version_numbers",
]


@dataclass(frozen=True, slots=True)
class ArmSpec:
    """One side of a comparison: a version, and a variant of it (None = base version)."""

    version: int
    variant_id: UUID | None


@dataclass(frozen=True, slots=True)
class GroupedAggregate:
    """Sums of one group (version/variant, trend bucket...) plus its stored sketches."""

    key: Any
    aggregate: ArmAggregate
    sketches: list[bytes]
    label: str | None = None


def _variant_args(variant: VariantFilter) -> tuple[str, UUID | None]:
    if variant is None:
        return "all", None
    if variant is BASE:
        return "base", None
    assert isinstance(variant, UUID)
    return "one", variant


_FILTER = """
   AND ($4::int IS NULL OR m.schema_version = $4::int)
   AND CASE $5::text WHEN 'all' THEN true
                     WHEN 'base' THEN m.variant_id IS NULL
                     ELSE m.variant_id = $6::uuid END
"""

# ----------------------------------------------------------------------------- identity


async def schema_row(db: Queryable, schema_id: UUID) -> Any:
    return await db.fetchrow(
        "SELECT id, key, name, status, current_version FROM workflow_schemas WHERE id = $1",
        schema_id,
    )


async def version_numbers(db: Queryable, schema_id: UUID, versions: Sequence[int]) -> set[int]:
    """Which of ``versions`` exist for the schema."""
    rows = await db.fetch(
        "SELECT version_number FROM workflow_schema_versions "
        "WHERE schema_id = $1 AND version_number = ANY($2::int[])",
        schema_id,
        list(versions),
    )
    return {int(r["version_number"]) for r in rows}


async def variant_rows(db: Queryable, ids: Sequence[UUID]) -> dict[UUID, Any]:
    rows = await db.fetch(
        "SELECT id, schema_id, base_version, variant_key, variant_name, status "
        "FROM schema_variants WHERE id = ANY($1::uuid[])",
        list(ids),
    )
    return {r["id"]: r for r in rows}


# ----------------------------------------------------------------------------- performance

_SUMMARY_SQL = f"""
SELECT m.schema_version, m.variant_id, sv.variant_key, {SUM_COLUMNS},
       coalesce(array_agg(m.duration_sketch) FILTER (WHERE m.duration_sketch IS NOT NULL),
                '{{}}'::bytea[]) AS sketches
  FROM version_performance_metrics m
  LEFT JOIN schema_variants sv ON sv.id = m.variant_id
 WHERE m.schema_id = $1 AND m.period_type = 'hour'
   AND m.period_start >= $2 AND m.period_start < $3
 GROUP BY m.schema_version, m.variant_id, sv.variant_key
 ORDER BY m.schema_version, m.variant_id NULLS FIRST
"""


async def summary_aggregates(
    db: Queryable, schema_id: UUID, window: Window
) -> list[GroupedAggregate]:
    """One group per (version, variant) with data in the window."""
    rows = await db.fetch(_SUMMARY_SQL, schema_id, window.start, window.end)
    return [
        GroupedAggregate(
            (int(r["schema_version"]), r["variant_id"]),
            ArmAggregate.from_record(r),
            list(r["sketches"]),
            r["variant_key"],
        )
        for r in rows
    ]


_TREND_SQL = f"""
SELECT abflow_period_start($7::text, m.period_start) AS bucket, {SUM_COLUMNS},
       coalesce(array_agg(m.duration_sketch) FILTER (WHERE m.duration_sketch IS NOT NULL),
                '{{}}'::bytea[]) AS sketches
  FROM version_performance_metrics m
 WHERE m.schema_id = $1 AND m.period_type = 'hour'
   AND m.period_start >= $2 AND m.period_start < $3
   {_FILTER}
 GROUP BY 1
 ORDER BY 1
"""


async def trend_aggregates(
    db: Queryable,
    schema_id: UUID,
    window: Window,
    granularity: str,
    version: int | None,
    variant: VariantFilter,
) -> dict[datetime, GroupedAggregate]:
    mode, vid = _variant_args(variant)
    rows = await db.fetch(
        _TREND_SQL, schema_id, window.start, window.end, version, mode, vid, granularity
    )
    return {
        r["bucket"]: GroupedAggregate(r["bucket"], ArmAggregate.from_record(r), list(r["sketches"]))
        for r in rows
    }


_METRIC_PERIODS_SQL = f"""
SELECT (m.period_start >= $7) AS is_current, {SUM_COLUMNS}
  FROM version_performance_metrics m
 WHERE m.schema_id = $1 AND m.period_type = 'hour'
   AND m.period_start >= $2 AND m.period_start < $3
   {_FILTER}
 GROUP BY 1
"""


async def metric_period_aggregates(
    db: Queryable,
    schema_id: UUID,
    current: Window,
    previous: Window,
    version: int | None,
    variant: VariantFilter,
) -> tuple[ArmAggregate, ArmAggregate]:
    """(previous, current) sums; the two windows must be adjacent."""
    mode, vid = _variant_args(variant)
    rows = await db.fetch(
        _METRIC_PERIODS_SQL,
        schema_id, previous.start, current.end, version, mode, vid, current.start,
    )  # fmt: skip
    by = {bool(r["is_current"]): ArmAggregate.from_record(r) for r in rows}
    return by.get(False, ArmAggregate()), by.get(True, ArmAggregate())


def _compare_sql(baseline: ArmSpec, comparison: ArmSpec) -> tuple[str, list[Any]]:
    """Both arms' sums in one statement. Exact equality on version and variant (``IS NULL``
    for the base version) so each arm reads only its own rows through the natural-key
    index (schema, version, variant, period type, hour)."""
    args: list[Any] = []

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    schema, start, end = param(None), param(None), param(None)
    parts = []
    for arm, spec in enumerate((baseline, comparison)):
        variant = (
            "m.variant_id IS NULL"
            if spec.variant_id is None
            else f"m.variant_id = {param(spec.variant_id)}::uuid"
        )
        parts.append(
            f"""
SELECT {arm} AS arm, {STAT_SUM_COLUMNS}
  FROM version_performance_metrics m
 WHERE m.schema_id = {schema} AND m.schema_version = {param(spec.version)}::int AND {variant}
   AND m.period_type = 'hour' AND m.period_start >= {start} AND m.period_start < {end}"""
        )
    return " UNION ALL ".join(parts), args


async def compare_aggregates(
    db: Queryable, schema_id: UUID, window: Window, baseline: ArmSpec, comparison: ArmSpec
) -> tuple[ArmAggregate, ArmAggregate]:
    """Sums of the baseline and comparison arms over the window (one round trip)."""
    sql, args = _compare_sql(baseline, comparison)
    args[:3] = [schema_id, window.start, window.end]
    rows = await db.fetch(sql, *args)
    by = {int(r["arm"]): ArmAggregate.from_record(r) for r in rows}
    return by.get(0, ArmAggregate()), by.get(1, ArmAggregate())


_COMPARE_TARGETS_SQL = """
SELECT q.id IS NOT NULL AND s.id IS NOT NULL AS schema_exists,
       (SELECT coalesce(array_agg(v.version_number), '{}')
          FROM workflow_schema_versions v
         WHERE v.schema_id = $1 AND v.version_number = ANY($2::int[])) AS versions,
       (SELECT coalesce(array_agg(sv.id ORDER BY sv.id), '{}')
          FROM schema_variants sv WHERE sv.id = ANY($3::uuid[])) AS variant_ids,
       (SELECT coalesce(array_agg(sv.schema_id ORDER BY sv.id), '{}')
          FROM schema_variants sv WHERE sv.id = ANY($3::uuid[])) AS variant_schemas,
       (SELECT coalesce(array_agg(sv.base_version ORDER BY sv.id), '{}')
          FROM schema_variants sv WHERE sv.id = ANY($3::uuid[])) AS variant_versions,
       (SELECT coalesce(array_agg(sv.variant_key ORDER BY sv.id), '{}')
          FROM schema_variants sv WHERE sv.id = ANY($3::uuid[])) AS variant_keys
  FROM (SELECT $1::uuid AS id) q
  LEFT JOIN workflow_schemas s ON s.id = q.id
"""


@dataclass(frozen=True, slots=True)
class CompareTargets:
    """What exists of a comparison's schema, versions and variants (one query)."""

    schema_exists: bool
    versions: set[int]
    variants: dict[UUID, tuple[UUID, int, str]]  # id -> (schema_id, base_version, key)


async def compare_targets(
    db: Queryable, schema_id: UUID, versions: Sequence[int], variant_ids: Sequence[UUID]
) -> CompareTargets:
    r = await db.fetchrow(_COMPARE_TARGETS_SQL, schema_id, list(versions), list(variant_ids))
    variants = {
        vid: (sid, int(ver), key)
        for vid, sid, ver, key in zip(
            r["variant_ids"],
            r["variant_schemas"],
            r["variant_versions"],
            r["variant_keys"],
            strict=True,
        )
    }
    return CompareTargets(bool(r["schema_exists"]), {int(v) for v in r["versions"]}, variants)


# ----------------------------------------------------------------------------- comparisons

_COMPARISON_COLUMNS = """
c.id, c.schema_id, c.baseline_version, c.comparison_version, c.baseline_variant_id,
c.comparison_variant_id, bv.variant_key AS baseline_variant_key,
cv.variant_key AS comparison_variant_key, c.period_start, c.period_end, c.primary_metric,
c.metrics, c.results, c.primary_p_value, c.primary_effect_size, c.ci_low, c.ci_high,
c.is_significant, c.recommendation, c.compared_by, c.created_at
"""


async def insert_comparison(db: Queryable, values: dict[str, Any]) -> Any:
    """Store one comparison; returns (id, created_at)."""
    return await db.fetchrow(
        """
        INSERT INTO version_comparisons (
            schema_id, baseline_version, comparison_version, baseline_variant_id,
            comparison_variant_id, period_start, period_end, primary_metric, metrics, results,
            primary_p_value, primary_effect_size, ci_low, ci_high, is_significant,
            recommendation, compared_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        RETURNING id, created_at
        """,
        values["schema_id"], values["baseline_version"], values["comparison_version"],
        values["baseline_variant_id"], values["comparison_variant_id"], values["period_start"],
        values["period_end"], values["primary_metric"], values["metrics"], values["results"],
        values["primary_p_value"], values["primary_effect_size"], values["ci_low"],
        values["ci_high"], values["is_significant"], values["recommendation"],
        values["compared_by"],
    )  # fmt: skip


async def comparison_by_id(db: Queryable, comparison_id: UUID) -> Any:
    return await db.fetchrow(
        f"""
        SELECT {_COMPARISON_COLUMNS}
          FROM version_comparisons c
          LEFT JOIN schema_variants bv ON bv.id = c.baseline_variant_id
          LEFT JOIN schema_variants cv ON cv.id = c.comparison_variant_id
         WHERE c.id = $1
        """,
        comparison_id,
    )


async def recent_comparisons(db: Queryable, limit: int) -> list[Any]:
    return await db.fetch(
        """
        SELECT c.id, c.schema_id, s.key AS schema_key, c.baseline_version, c.comparison_version,
               c.baseline_variant_id, c.comparison_variant_id, c.primary_metric,
               c.primary_p_value, c.is_significant, c.recommendation, c.created_at
          FROM version_comparisons c
          JOIN workflow_schemas s ON s.id = c.schema_id
         ORDER BY c.created_at DESC, c.id
         LIMIT $1
        """,
        limit,
    )


# ----------------------------------------------------------------------------- dashboard


async def dashboard_counts(db: Queryable) -> Any:
    row = await db.fetchrow(
        """
        SELECT (SELECT count(*) FROM workflow_schemas)::bigint AS schemas_total,
               (SELECT count(*) FROM workflow_schemas WHERE status = 'active')::bigint
                   AS schemas_active,
               (SELECT coalesce(jsonb_object_agg(v.status, v.n), '{}'::jsonb)
                  FROM (SELECT status, count(*) AS n FROM schema_variants GROUP BY status) v)
                   AS variants_by_status,
               (SELECT coalesce(jsonb_object_agg(x.status, x.n), '{}'::jsonb)
                  FROM (SELECT status, count(*) AS n FROM experiments GROUP BY status) x)
                   AS experiments_by_status
        """
    )
    return row


def _json_obj(value: Any) -> dict[str, int]:
    data = json.loads(value) if isinstance(value, str) else (value or {})
    return {str(k): int(v) for k, v in data.items()}


async def dashboard_performance(db: Queryable, window: Window) -> ArmAggregate:
    row = await db.fetchrow(
        f"""
        SELECT {SUM_COLUMNS}
          FROM version_performance_metrics m
         WHERE m.period_type = 'hour' AND m.period_start >= $1 AND m.period_start < $2
        """,
        window.start,
        window.end,
    )
    return ArmAggregate.from_record(row)


async def top_schemas(db: Queryable, window: Window, limit: int) -> list[Any]:
    return await db.fetch(
        f"""
        SELECT s.id AS schema_id, s.key AS schema_key, s.name AS schema_name, t.*
          FROM (SELECT m.schema_id, {SUM_COLUMNS}
                  FROM version_performance_metrics m
                 WHERE m.period_type = 'hour' AND m.period_start >= $1 AND m.period_start < $2
                 GROUP BY m.schema_id) t
          JOIN workflow_schemas s ON s.id = t.schema_id
         ORDER BY t.total_executions DESC, s.key
         LIMIT $3
        """,
        window.start,
        window.end,
        limit,
    )


async def running_experiments(db: Queryable, limit: int) -> list[Any]:
    return await db.fetch(
        """
        SELECT experiment_id, experiment_key, experiment_name, schema_id, schema_key,
               primary_metric, started_at, total_executions, progress_pct
          FROM v_experiment_status
         WHERE status = 'running'
         ORDER BY started_at DESC NULLS LAST, experiment_key
         LIMIT $1
        """,
        limit,
    )


# ----------------------------------------------------------------------------- experiments


async def experiment_page(
    db: Queryable, status: str | None, schema_id: UUID | None, limit: int, offset: int
) -> tuple[int, list[UUID]]:
    """(total matching, ids of the page) ordered newest first."""
    total = await db.fetchrow(
        "SELECT count(*)::bigint AS n FROM experiments e "
        "WHERE ($1::text IS NULL OR e.status = $1) AND ($2::uuid IS NULL OR e.schema_id = $2)",
        status,
        schema_id,
    )
    rows = await db.fetch(
        "SELECT e.id FROM experiments e "
        "WHERE ($1::text IS NULL OR e.status = $1) AND ($2::uuid IS NULL OR e.schema_id = $2) "
        "ORDER BY e.created_at DESC, e.id LIMIT $3 OFFSET $4",
        status,
        schema_id,
        limit,
        offset,
    )
    return int(total["n"]), [r["id"] for r in rows]


async def active_experiment_ids(db: Queryable) -> list[UUID]:
    """Running and paused experiments (for the per-variant gauges)."""
    rows = await db.fetch(
        "SELECT id FROM experiments WHERE status IN ('running', 'paused') ORDER BY experiment_key"
    )
    return [r["id"] for r in rows]


def json_counts(value: Any) -> dict[str, int]:
    """A ``jsonb`` object of counts as a dict (the pool decodes jsonb already)."""
    return _json_obj(value)
