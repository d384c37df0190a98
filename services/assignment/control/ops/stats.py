"""The version-control statistics of ``GET /api/v1/versions/stats``."""

from __future__ import annotations

import asyncpg

from ..models.variants import VersionStats

__all__ = ["version_stats"]


async def version_stats(conn: asyncpg.Connection) -> VersionStats:
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM workflow_schemas) AS total_schemas,
               (SELECT count(*) FROM workflow_schemas WHERE status = 'active') AS active_schemas,
               (SELECT count(*) FROM workflow_schema_versions) AS total_versions,
               (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
                  FROM (SELECT status, count(*) AS n FROM schema_variants GROUP BY status) v) AS variants,
               (SELECT coalesce(jsonb_object_agg(status, n), '{}'::jsonb)
                  FROM (SELECT status, count(*) AS n FROM experiments GROUP BY status) e) AS experiments
        """
    )
    variants = {s: 0 for s in ("draft", "active", "paused", "archived")} | dict(row["variants"])
    experiments = {s: 0 for s in ("draft", "running", "paused", "completed", "cancelled")} | dict(
        row["experiments"]
    )
    return VersionStats(
        total_schemas=row["total_schemas"],
        active_schemas=row["active_schemas"],
        total_versions=row["total_versions"],
        total_variants=sum(variants.values()),
        variants_by_status=variants,
        total_experiments=sum(experiments.values()),
        experiments_by_status=experiments,
        running_experiments=experiments["running"],
    )
