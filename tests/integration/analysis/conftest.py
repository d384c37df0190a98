"""Fixtures of the analysis integration tests: one seeded world and an HTTP client.

The world is built once per session in the session's fresh database: schemas, variants,
experiments, raw executions and their hourly per-partition aggregates.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from services.analysis.main import create_app
from services.analysis.settings import AnalysisSettings
from tests.conftest import KEYS
from tests.integration.analysis import builders as b

NIL = UUID(int=0)


@dataclass
class World:
    now: datetime
    perf_schema: UUID = NIL
    perf_variant_v1: UUID = NIL
    perf_variant_v2: UUID = NIL
    other_schema: UUID = NIL
    other_variant: UUID = NIL
    empty_schema: UUID = NIL
    multi: UUID = NIL  # 3 arms, fixed horizon, planted effect in t1
    multi_arms: dict[str, UUID] = field(default_factory=dict)
    sequential: UUID = NIL  # 2 arms, sequential, MDE
    sequential_arms: dict[str, UUID] = field(default_factory=dict)
    draft: UUID = NIL  # no arms
    srm: UUID = NIL  # exposures far from the split, little data
    completed: UUID = NIL  # completed with a recorded winner
    completed_winner: UUID = NIL
    schemas: dict[str, UUID] = field(default_factory=dict)  # experiment name -> its schema
    executions: list[b.Execution] = field(default_factory=list)


async def _build(conn: asyncpg.Connection) -> World:
    rng = random.Random(20240611)
    w = World(now=datetime.now(UTC))
    execs: list[b.Execution] = []

    # --- performance: schema with 2 versions, a variant of each, 12 days of data
    w.perf_schema = await b.create_schema(conn, "perf-schema", versions=2)
    w.perf_variant_v1 = await b.create_variant(conn, w.perf_schema, "perf-v1-strict", 1)
    w.perf_variant_v2 = await b.create_variant(conn, w.perf_schema, "perf-v2-fast", 2)
    s = w.perf_schema
    execs += b.generate(rng, 1500, schema_id=s, version=1, days=12)
    execs += b.generate(
        rng, 1500, schema_id=s, version=2, days=12,
        profile=b.ArmProfile(p_success=0.94, duration_median_ms=330.0),
    )  # fmt: skip
    execs += b.generate(rng, 400, schema_id=s, version=1, variant_id=w.perf_variant_v1, days=12)
    execs += b.generate(
        rng, 60, schema_id=s, version=2, variant_id=w.perf_variant_v2, days=12,
        profile=b.ArmProfile(p_success=0.97),
    )  # fmt: skip
    w.other_schema = await b.create_schema(conn, "other-schema", versions=1)
    w.other_variant = await b.create_variant(conn, w.other_schema, "other-v", 1)
    w.empty_schema = await b.create_schema(conn, "empty-schema", versions=2)

    # --- experiment with 3 arms (control, t1 better, t2 same), fixed horizon
    sm = w.schemas["multi"] = await b.create_schema(conn, "multi-arm", versions=1)
    arms = {k: await b.create_variant(conn, sm, k, 1) for k in ("control", "t1", "t2")}
    w.multi_arms = arms
    w.multi = await b.create_experiment(
        conn,
        b.ExperimentSpec(
            "multi-arm-exp", sm,
            [(arms["control"], True, 34), (arms["t1"], False, 33), (arms["t2"], False, 33)],
            secondary_metrics=["execution_time"], started_days_ago=5.0,
            minimum_detectable_effect=0.05,
        ),
    )  # fmt: skip
    profiles = {
        "control": b.ArmProfile(p_success=0.90),
        "t1": b.ArmProfile(p_success=0.95, duration_median_ms=360.0, duration_sigma=0.5),
        "t2": b.ArmProfile(p_success=0.90, duration_median_ms=410.0),
    }
    for k, n in (("control", 1500), ("t1", 1400), ("t2", 1450)):
        execs += b.generate(
            rng, n, schema_id=sm, version=1, variant_id=arms[k], experiment_id=w.multi,
            profile=profiles[k], days=4.9, units=n // 2,
        )  # fmt: skip

    # --- sequential experiment, primary execution_time, MDE 5% relative
    sq = w.schemas["sequential"] = await b.create_schema(conn, "sequential", versions=1)
    sarms = {k: await b.create_variant(conn, sq, k, 1) for k in ("base", "fast")}
    w.sequential_arms = sarms
    w.sequential = await b.create_experiment(
        conn,
        b.ExperimentSpec(
            "sequential-exp", sq, [(sarms["base"], True, 50), (sarms["fast"], False, 50)],
            primary_metric="execution_time", sequential_testing=True, sequential_tuning=2000,
            min_sample_size=200, confidence_level=0.9, minimum_detectable_effect=0.05,
            started_days_ago=3.0,
        ),
    )  # fmt: skip
    execs += b.generate(
        rng, 900, schema_id=sq, version=1, variant_id=sarms["base"], experiment_id=w.sequential,
        days=2.9,
    )  # fmt: skip
    execs += b.generate(
        rng, 950, schema_id=sq, version=1, variant_id=sarms["fast"], experiment_id=w.sequential,
        profile=b.ArmProfile(duration_median_ms=300.0), days=2.9,
    )  # fmt: skip

    # --- draft without arms
    sd = w.schemas["draft"] = await b.create_schema(conn, "draft-schema", versions=1)
    w.draft = await b.create_experiment(conn, b.ExperimentSpec("draft-exp", sd, [], status="draft"))

    # --- SRM: 50/50 configured, 1000 vs 700 units exposed; a few executions
    ss = w.schemas["srm"] = await b.create_schema(conn, "srm-schema", versions=1)
    a = await b.create_variant(conn, ss, "a", 1)
    c = await b.create_variant(conn, ss, "c", 1)
    w.srm = await b.create_experiment(
        conn, b.ExperimentSpec("srm-exp", ss, [(a, True, 50), (c, False, 50)])
    )
    await conn.copy_records_to_table(
        "experiment_exposures",
        columns=["experiment_id", "unit_id", "variant_id", "first_exposed_at", "bucket"],
        records=[(w.srm, f"u{i}", a if i < 1000 else c, w.now, 0.1) for i in range(1700)],
    )
    srm_execs = b.generate(rng, 30, schema_id=ss, version=1, variant_id=a, experiment_id=w.srm)
    srm_execs += b.generate(rng, 20, schema_id=ss, version=1, variant_id=c, experiment_id=w.srm)
    await b.insert_executions(conn, srm_execs)
    await b.write_aggregates(conn, srm_execs)

    # --- completed with a recorded winner
    sc = w.schemas["completed"] = await b.create_schema(conn, "completed-schema", versions=1)
    x = await b.create_variant(conn, sc, "x", 1)
    y = await b.create_variant(conn, sc, "y", 1)
    w.completed = await b.create_experiment(
        conn,
        b.ExperimentSpec("completed-exp", sc, [(x, True, 50), (y, False, 50)], status="completed"),
    )
    await conn.execute(
        "UPDATE experiments SET winning_variant_id = $2, p_value = 0.01, effect_size = 0.2 "
        "WHERE id = $1",
        w.completed,
        y,
    )
    w.completed_winner = y

    await b.store(conn, execs)
    w.executions = execs + srm_execs
    return w


@pytest.fixture(scope="session")
async def world(db_pool: asyncpg.Pool) -> World:
    async with db_pool.acquire() as conn:
        return await _build(conn)


@pytest.fixture(scope="session")
async def analysis_app(database_url: str, world: World) -> AsyncIterator[Any]:
    app = create_app(AnalysisSettings(database_url=database_url))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def client(analysis_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=analysis_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://analysis", headers=KEYS.headers("read")
    ) as c:
        yield c


def strict_json(resp: httpx.Response) -> Any:
    """The body, failing on NaN/Infinity (which Python's json would otherwise accept)."""

    def reject(token: str) -> Any:
        raise AssertionError(f"non-finite number {token} in {resp.request.url}")

    return json.loads(resp.text, parse_constant=reject)
