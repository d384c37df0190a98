"""Every seed table, function and view exists and does its job on real PostgreSQL."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.assignment import CompiledSchema, decide
from shared.events import (
    AssignmentConfig,
    ExperimentArm,
    ExperimentConfig,
    SchemaDefinition,
    VariantConfig,
)

pytestmark = pytest.mark.integration

SEED_TABLES = [
    "workflow_schemas",
    "workflow_schema_versions",
    "schema_variants",
    "experiments",
    "experiment_variants",
    "version_performance_metrics",
    "version_comparisons",
    "workflow_executions",
    "audit_log",
    "config_outbox",
    "experiment_exposures",
    "experiment_variant_metrics",
]
SEED_FUNCTIONS = [
    "aggregate_version_metrics",
    "update_variant_metrics",
    "select_variant_for_execution",
    "get_version_comparison_summary",
]
SEED_VIEWS = ["v_schema_performance_summary", "v_version_performance", "v_experiment_status"]
DEFINITION = {
    "workflow_steps": [{"name": "draft"}, {"name": "review"}],
    "risk_config": {"auto_approve_threshold": 0.3},
    "config": {},
}
HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture
async def conn(db_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with db_pool.acquire() as c:
        yield c


async def _schema(conn: asyncpg.Connection) -> tuple[uuid.UUID, str]:
    key = f"s-{uuid.uuid4().hex[:8]}"
    async with conn.transaction():
        sid = await conn.fetchval(
            "INSERT INTO workflow_schemas (key, name, current_version) VALUES ($1, $1, 1) RETURNING id",
            key,
        )
        await conn.execute(
            "INSERT INTO workflow_schema_versions (schema_id, version_number, definition) VALUES ($1, 1, $2)",
            sid,
            DEFINITION,
        )
    return sid, key


async def _variant(
    conn: asyncpg.Connection, sid: uuid.UUID, key: str, traffic: float, status: str = "active"
) -> uuid.UUID:
    vid: uuid.UUID = await conn.fetchval(
        "INSERT INTO schema_variants (schema_id, base_version, variant_key, traffic_allocation, status, risk_config_override)"
        " VALUES ($1, 1, $2, $3, $4, $5) RETURNING id",
        sid,
        key,
        traffic,
        status,
        {"auto_approve_threshold": 0.2},
    )
    return vid


async def test_every_seed_table_function_and_view_exists(conn: asyncpg.Connection) -> None:
    for table in SEED_TABLES:
        assert await conn.fetchval("SELECT to_regclass($1)", table) == table, table
    for view in SEED_VIEWS:
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_views WHERE viewname = $1", view) == 1
        ), view
    for fn in SEED_FUNCTIONS:
        assert await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = $1", fn) >= 1, fn
    assert await conn.fetchval("SELECT fnv1a32('')") == 2166136261
    assert await conn.fetchval("SELECT fnv1a32('a')") == 3826002220


async def test_constraints_hold_in_the_database(conn: asyncpg.Connection) -> None:
    sid, _ = await _schema(conn)
    await _variant(conn, sid, "a", 60)
    with pytest.raises(asyncpg.CheckViolationError, match="traffic_allocation_exceeds_100"):
        await _variant(conn, sid, "b", 50)
    with pytest.raises(asyncpg.CheckViolationError):
        await _variant(conn, sid, "c", 101, status="draft")
    with pytest.raises(asyncpg.PostgresError, match="schema_version_immutable"):
        await conn.execute(
            "UPDATE workflow_schema_versions SET change_summary = 'x' WHERE schema_id = $1", sid
        )
    with pytest.raises(asyncpg.UniqueViolationError):
        await _variant(conn, sid, "a", 0, status="draft")
    eid = await conn.fetchval(
        "INSERT INTO experiments (experiment_key, experiment_name, schema_id, hash_seed) VALUES ($1, 'e', $2, $1) RETURNING id",
        f"e-{uuid.uuid4().hex[:6]}",
        sid,
    )
    with pytest.raises(asyncpg.PostgresError, match="illegal_transition"):
        await conn.execute("UPDATE experiments SET status = 'paused' WHERE id = $1", eid)


async def test_select_variant_for_execution_agrees_with_the_service_decision(
    conn: asyncpg.Connection,
) -> None:
    sid, key = await _schema(conn)
    control = await _variant(conn, sid, "control", 0, status="draft")
    treat = await _variant(conn, sid, "treatment_a", 0, status="draft")
    rollout = await _variant(conn, sid, "rollout_b", 30)
    ekey = f"hitl_{uuid.uuid4().hex[:6]}"
    eid = await conn.fetchval(
        "INSERT INTO experiments (experiment_key, experiment_name, schema_id, hash_seed, coverage)"
        " VALUES ($1, 'HITL', $2, $1, 0.8) RETURNING id",
        ekey,
        sid,
    )
    await conn.executemany(
        "INSERT INTO experiment_variants (experiment_id, variant_id, position, is_control, traffic_percentage) VALUES ($1, $2, $3, $4, $5)",
        [(eid, control, 0, True, 50), (eid, treat, 1, False, 50)],
    )
    await conn.execute(
        "UPDATE experiments SET status = 'running', started_at = now() WHERE id = $1", eid
    )

    base = SchemaDefinition.model_validate(DEFINITION)

    def vc(vid: uuid.UUID, k: str, traffic: float, status: str) -> VariantConfig:
        return VariantConfig(
            variant_id=vid,
            variant_key=k,
            base_version=1,
            traffic_allocation=traffic,
            status=status,
            effective_definition=base,
        )

    cfg = AssignmentConfig(
        schema_id=sid,
        schema_key=key,
        revision=1,
        base_version=1,
        base_definition=base,
        variants=[
            vc(control, "control", 0, "draft"),
            vc(rollout, "rollout_b", 30, "active"),
            vc(treat, "treatment_a", 0, "draft"),
        ],
        experiment=ExperimentConfig(
            experiment_id=eid,
            experiment_key=ekey,
            seed=ekey,
            coverage=0.8,
            arms=[
                ExperimentArm(
                    variant_id=control, variant_key="control", weight=0.5, is_control=True
                ),
                ExperimentArm(variant_id=treat, variant_key="treatment_a", weight=0.5),
            ],
        ),
    )
    compiled = CompiledSchema.from_config(cfg)
    units = [f"unit-{i}" for i in range(10_000)]
    rows = await conn.fetch(
        "SELECT u, r.* FROM unnest($2::text[]) AS u, LATERAL select_variant_for_execution($1, u) AS r",
        sid,
        units,
    )
    assert len(rows) == len(units)
    reasons = set()
    for row in rows:
        d = decide(compiled, row["u"])
        got = (
            row["variant_id"],
            row["in_experiment"],
            row["reason"],
            row["bucket"],
            row["schema_version"],
        )
        assert got == (d.variant_id, d.in_experiment, d.reason, d.bucket, d.schema_version), row[
            "u"
        ]
        reasons.add(row["reason"])
    assert reasons == {"experiment", "rollout", "default"}


async def test_metric_functions_and_views_sum_the_hourly_rows(conn: asyncpg.Connection) -> None:
    sid, key = await _schema(conn)
    vid = await _variant(conn, sid, "v", 20)
    rng = random.Random(7)
    executions = []
    for i in range(400):
        version_variant = (1, None) if i % 2 else (1, vid)
        t = HOUR + timedelta(minutes=rng.randrange(0, 180))
        executions.append(
            (
                f"x-{key}-{i}",
                sid,
                version_variant[0],
                version_variant[1],
                rng.random() < 0.8,
                rng.lognormvariate(6, 0.5),
                rng.random(),
                t - timedelta(seconds=5),
                t,
                i % 3,
            )
        )
    await conn.executemany(
        "INSERT INTO workflow_executions (execution_id, schema_id, schema_version, variant_id, success, duration_ms,"
        " risk_score, started_at, completed_at, source_partition) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
        executions,
    )
    # hourly rows per (variant, hour, partition), computed here from the raw rows
    await conn.execute(
        """
        INSERT INTO version_performance_metrics (schema_id, schema_version, variant_id, period_type, period_start,
            source_partition, total_executions, successful_executions, failed_executions, duration_count,
            duration_sum, duration_sum_sq, duration_min, duration_max, risk_count, risk_sum, risk_sum_sq, risk_min, risk_max)
        SELECT schema_id, schema_version, variant_id, 'hour', date_trunc('hour', completed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
               source_partition, count(*), count(*) FILTER (WHERE success), count(*) FILTER (WHERE NOT success),
               count(*), sum(duration_ms), sum(duration_ms ^ 2), min(duration_ms), max(duration_ms),
               count(risk_score), sum(risk_score), sum(risk_score ^ 2), min(risk_score), max(risk_score)
          FROM workflow_executions WHERE schema_id = $1
         GROUP BY 1, 2, 3, 5, 6
        """,
        sid,
    )
    written = await conn.fetchval(
        "SELECT aggregate_version_metrics('day', $1, $2)",
        HOUR - timedelta(days=1),
        HOUR + timedelta(days=1),
    )
    assert written >= 2
    day = await conn.fetch(
        "SELECT variant_id, total_executions, duration_sum FROM version_performance_metrics"
        " WHERE schema_id = $1 AND period_type = 'day'",
        sid,
    )
    exact = {
        v: (sum(1 for e in executions if e[3] == v), sum(e[5] for e in executions if e[3] == v))
        for v in (None, vid)
    }
    assert {r["variant_id"]: r["total_executions"] for r in day} == {
        v: n for v, (n, _) in exact.items()
    }
    for r in day:
        assert r["duration_sum"] == pytest.approx(exact[r["variant_id"]][1], rel=1e-9)

    assert await conn.fetchval("SELECT update_variant_metrics($1)", vid) == 1
    cached = await conn.fetchrow(
        "SELECT total_executions, conversion_rate FROM schema_variants WHERE id = $1", vid
    )
    mine = [e for e in executions if e[3] == vid]
    assert cached["total_executions"] == len(mine)
    assert cached["conversion_rate"] == pytest.approx(sum(e[4] for e in mine) / len(mine), rel=1e-9)

    summary = await conn.fetch(
        "SELECT * FROM get_version_comparison_summary($1, 1, 1, 100000)", sid
    )
    assert summary and summary[0]["total_executions"] == len(
        [e for e in executions if e[3] is None]
    )

    perf = await conn.fetchrow(
        "SELECT * FROM v_schema_performance_summary WHERE schema_id = $1", sid
    )
    assert perf is not None and perf["total_executions"] == len(executions)
    versions = await conn.fetch("SELECT * FROM v_version_performance WHERE schema_id = $1", sid)
    assert sum(r["total_executions"] for r in versions) == len(executions)

    eid = await conn.fetchval(
        "INSERT INTO experiments (experiment_key, experiment_name, schema_id, hash_seed, min_sample_size)"
        " VALUES ($1, 'e', $2, $1, 1000) RETURNING id",
        f"e-{uuid.uuid4().hex[:6]}",
        sid,
    )
    await conn.execute(
        "INSERT INTO experiment_variants (experiment_id, variant_id, position, is_control, traffic_percentage) VALUES ($1, $2, 0, true, 100)",
        eid,
        vid,
    )
    await conn.execute(
        "INSERT INTO experiment_variant_metrics (experiment_id, variant_id, period_type, period_start, source_partition,"
        " total_executions, successful_executions, failed_executions) VALUES ($1, $2, 'hour', $3, 0, 250, 200, 50)",
        eid,
        vid,
        HOUR,
    )
    status = await conn.fetchrow("SELECT * FROM v_experiment_status WHERE experiment_id = $1", eid)
    assert status["total_executions"] == 250 and status["progress_pct"] == pytest.approx(25.0)
    assert json.dumps(dict(status), default=str)


async def test_rollout_order_of_the_sql_function_is_the_publishers(
    conn: asyncpg.Connection,
) -> None:
    """Several rollout variants created in an order that is not their key order: the SQL
    reference and the decision on the config the control plane publishes agree."""
    from services.assignment.control.config_builder import load_config

    sid, _ = await _schema(conn)
    for k, traffic in (("zeta", 20), ("alpha", 15), ("mid", 25)):
        await _variant(conn, sid, k, traffic)
    cfg = await load_config(conn, sid, 1)
    assert cfg is not None
    assert [v.variant_key for v in cfg.variants] == ["zeta", "alpha", "mid"]  # creation order
    compiled = CompiledSchema.from_config(cfg)
    units = [f"unit-{i}" for i in range(10_000)]
    rows = await conn.fetch(
        "SELECT u, r.* FROM unnest($2::text[]) AS u, LATERAL select_variant_for_execution($1, u) AS r",
        sid,
        units,
    )
    seen = set()
    for row in rows:
        d = decide(compiled, row["u"])
        assert (row["variant_id"], row["reason"], row["bucket"]) == (
            d.variant_id,
            d.reason,
            d.bucket,
        ), row["u"]
        seen.add(row["variant_key"])
    assert seen == {"zeta", "alpha", "mid", None}
