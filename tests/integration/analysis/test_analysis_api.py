"""Every route of the analysis service on the real PostgreSQL, success and error cases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.analysis.main import create_app
from services.analysis.settings import AnalysisSettings
from tests.conftest import KEYS
from tests.integration.analysis import builders as b
from tests.integration.analysis.conftest import World, strict_json

pytestmark = pytest.mark.integration

PERF = "/api/v1/performance"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def error(resp: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = strict_json(resp)
    if code is not None:
        assert body["error"] == code, body
    return dict(body)


# ----------------------------------------------------------------------------- operations


async def test_health_ready_and_metrics(client: httpx.AsyncClient) -> None:
    health = strict_json(await client.get("/health"))
    assert health["status"] == "ok" and health["components"]["database"]["ready"] is True
    assert (await client.get("/health/ready")).status_code == 200
    text = (await client.get("/metrics")).text
    assert "analysis_compare_cache_lookups" in text and "http_requests_total" in text


async def test_database_failure_is_503_not_500(database_url: str, world: World) -> None:
    app = create_app(AnalysisSettings(database_url=database_url))
    async with app.router.lifespan_context(app):
        await app.state.database.pool.close()  # the server "went away"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://a", headers=KEYS.headers("read")
        ) as c:
            error(
                await c.get(f"/api/v1/experiments/{world.multi}/status"),
                503,
                "database_unavailable",
            )
            error(await c.get(f"{PERF}/dashboard/summary"), 503, "database_unavailable")


# ----------------------------------------------------------------------------- summary


async def test_summary_per_version_and_variant(client: httpx.AsyncClient, world: World) -> None:
    body = strict_json(await client.get(f"{PERF}/schemas/{world.perf_schema}/summary"))
    assert body["schema_key"] == f"{b.TAG}-perf-schema" and body["current_version"] == 2
    assert body["period"]["days"] == 30
    keys = {(v["schema_version"], v["variant_key"]) for v in body["versions"]}
    assert keys == {(1, None), (1, "perf-v1-strict"), (2, None), (2, "perf-v2-fast")}
    mine = [e for e in world.executions if e.schema_id == world.perf_schema]
    assert (
        body["totals"]["executions"] == len(mine) == sum(v["executions"] for v in body["versions"])
    )
    assert body["totals"]["successful_executions"] == sum(e.success for e in mine)
    for v in body["versions"]:
        assert v["is_base_version"] is (v["variant_id"] is None)
        assert 0 < v["success_rate"] <= 1
        assert (
            v["p50_execution_time_ms"] <= v["p95_execution_time_ms"] <= v["p99_execution_time_ms"]
        )
        assert 0 < v["avg_risk_score"] < 1


async def test_summary_explicit_window_and_empty_schema(
    client: httpx.AsyncClient, world: World
) -> None:
    end = datetime.now(UTC) + timedelta(hours=1)
    start = end - timedelta(days=3)
    resp = await client.get(
        f"{PERF}/schemas/{world.perf_schema}/summary",
        params={"start": start.isoformat(), "end": end.isoformat()},
    )
    body = strict_json(resp)
    # as instants: the strings differ in form ("...:00Z" vs "...:00.123456+00:00")
    period_start = datetime.fromisoformat(body["period"]["start"])
    assert period_start <= start and body["period"]["days"] >= 3
    recent = [
        e for e in world.executions
        if e.schema_id == world.perf_schema and e.completed_at >= period_start
    ]  # fmt: skip
    assert body["totals"]["executions"] == len(recent)

    empty = strict_json(await client.get(f"{PERF}/schemas/{world.empty_schema}/summary"))
    assert empty["versions"] == [] and empty["totals"]["executions"] == 0
    assert (
        empty["totals"]["success_rate"] is None and empty["totals"]["p95_execution_time_ms"] is None
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (f"schemas/{UNKNOWN}/summary", {}, 404, "schema_not_found"),
        ("schemas/not-a-uuid/summary", {}, 422, "validation_failed"),
        ("schemas/{s}/summary", {"period_days": 0}, 422, "validation_failed"),
        ("schemas/{s}/summary", {"period_days": 5000}, 422, "validation_failed"),
        ("schemas/{s}/summary", {"period_days": 400}, 422, "invalid_period"),
        ("schemas/{s}/summary", {"start": "2024-01-02T00:00:00Z"}, 422, "invalid_period"),
        (
            "schemas/{s}/summary",
            {"start": "2024-01-02", "end": "2024-01-01"},
            422,
            "invalid_period",
        ),
        (
            "schemas/{s}/summary",
            {"start": "2020-01-01", "end": "2024-01-01"},
            422,
            "invalid_period",
        ),
        ("schemas/{s}/summary", {"start": "yesterday", "end": "today"}, 422, "validation_failed"),
        (
            "schemas/{s}/summary",
            {"start": "9999-12-31T23:00:00Z", "end": "9999-12-31T23:59:59Z"},
            422,
            "invalid_period",
        ),
        (
            "schemas/{s}/summary",
            {"start": "0001-01-01", "end": "0001-01-02"},
            422,
            "invalid_period",
        ),
        (
            "schemas/{s}/metrics/success_rate",
            {"start": "1970-01-01", "end": "1970-01-02"},
            200,
            None,
        ),
    ],
)
async def test_summary_errors(
    client: httpx.AsyncClient,
    world: World,
    path: str,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    url = f"{PERF}/" + path.format(s=world.perf_schema)
    error(await client.get(url, params=params), status, code)


# ----------------------------------------------------------------------------- trends


async def test_trends_daily_and_weekly(client: httpx.AsyncClient, world: World) -> None:
    s = world.perf_schema
    day = strict_json(await client.get(f"{PERF}/schemas/{s}/trends", params={"granularity": "day"}))
    assert day["granularity"] == "day" and len(day["buckets"]) == 30
    starts = [x["bucket_start"] for x in day["buckets"]]
    assert all(x.endswith("T00:00:00Z") for x in starts)
    instants = [datetime.fromisoformat(x) for x in starts]  # ordered as instants, not text
    assert instants == sorted(instants)
    mine = [e for e in world.executions if e.schema_id == s]
    assert sum(x["executions"] for x in day["buckets"]) == len(mine)
    # a bucket equals a direct count of the raw executions of that UTC day
    busiest = max(day["buckets"], key=lambda x: x["executions"])
    t0 = datetime.fromisoformat(busiest["bucket_start"])
    assert busiest["executions"] == sum(
        1 for e in mine if t0 <= e.completed_at < t0 + timedelta(days=1)
    )
    empty = [x for x in day["buckets"] if x["executions"] == 0]
    assert empty and all(x["success_rate"] is None for x in empty)

    week = strict_json(
        await client.get(f"{PERF}/schemas/{s}/trends", params={"granularity": "week", "periods": 4})
    )
    assert len(week["buckets"]) == 4
    assert all(datetime.fromisoformat(x["bucket_start"]).weekday() == 0 for x in week["buckets"])
    assert sum(x["executions"] for x in week["buckets"]) == len(mine)

    base_v1 = strict_json(
        await client.get(f"{PERF}/schemas/{s}/trends", params={"version": 1, "variant": "base"})
    )
    assert sum(x["executions"] for x in base_v1["buckets"]) == sum(
        1 for e in mine if e.schema_version == 1 and e.variant_id is None
    )
    one = strict_json(
        await client.get(
            f"{PERF}/schemas/{s}/trends", params={"variant": str(world.perf_variant_v2)}
        )
    )
    assert sum(x["executions"] for x in one["buckets"]) == sum(
        1 for e in mine if e.variant_id == world.perf_variant_v2
    )


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"granularity": "month"}, 422, "validation_failed"),
        ({"periods": 0}, 422, "validation_failed"),
        ({"granularity": "week", "periods": 500}, 422, "invalid_period"),
        ({"variant": "nope"}, 422, "invalid_variant"),
        ({"variant": UNKNOWN}, 404, "variant_not_found"),
        ({"version": 9}, 404, "version_not_found"),
        ({"version": 0}, 422, "validation_failed"),
        ({"version": 2**40}, 422, "validation_failed"),
        ({"version": 1, "variant": "{v2}"}, 422, "variant_version_mismatch"),
        ({"variant": "{other}"}, 422, "variant_schema_mismatch"),
    ],
)
async def test_trends_errors(
    client: httpx.AsyncClient, world: World, params: dict[str, Any], status: int, code: str
) -> None:
    p = {
        k: (
            v.format(v2=world.perf_variant_v2, other=world.other_variant)
            if isinstance(v, str)
            else v
        )
        for k, v in params.items()
    }
    error(await client.get(f"{PERF}/schemas/{world.perf_schema}/trends", params=p), status, code)
    error(await client.get(f"{PERF}/schemas/{UNKNOWN}/trends"), 404, "schema_not_found")


# ----------------------------------------------------------------------------- metric


@pytest.mark.parametrize("metric", ["success_rate", "execution_time", "risk_score"])
async def test_metric_this_period_against_previous(
    client: httpx.AsyncClient, world: World, metric: str
) -> None:
    body = strict_json(
        await client.get(
            f"{PERF}/schemas/{world.perf_schema}/metrics/{metric}",
            params={"period_days": 5, "version": 2, "variant": "base"},
        )
    )
    cur, prev = body["current_period"], body["previous_period"]
    t = {
        k: datetime.fromisoformat(v)
        for k, v in (
            ("cs", cur["start"]), ("ce", cur["end"]), ("ps", prev["start"]), ("pe", prev["end"])
        )
    }  # fmt: skip
    # compared as instants (the same instant can be written in more than one form)
    assert t["pe"] == t["cs"] and cur["days"] == prev["days"] == 5
    mine = [
        e
        for e in world.executions
        if e.schema_id == world.perf_schema and e.schema_version == 2 and e.variant_id is None
    ]
    n_cur = sum(1 for e in mine if t["cs"] <= e.completed_at < t["ce"])
    n_prev = sum(1 for e in mine if t["ps"] <= e.completed_at < t["cs"])
    if metric == "risk_score":
        n_cur = sum(
            1 for e in mine if t["cs"] <= e.completed_at < t["ce"] and e.risk_score is not None
        )
        n_prev = sum(
            1 for e in mine if t["ps"] <= e.completed_at < t["cs"] and e.risk_score is not None
        )
    assert body["current"]["n"] == n_cur > 0 and body["previous"]["n"] == n_prev > 0
    cmp = body["comparison"]
    assert cmp["metric"] == metric and cmp["p_value"] is not None
    assert body["change"] == cmp["difference"]
    assert body["trend"] in ("improving", "degrading", "no_significant_change")
    if not cmp["is_significant"]:
        assert body["trend"] == "no_significant_change"


async def test_metric_errors_and_no_data(client: httpx.AsyncClient, world: World) -> None:
    s = world.perf_schema
    error(await client.get(f"{PERF}/schemas/{s}/metrics/latency"), 422, "unknown_metric")
    error(
        await client.get(f"{PERF}/schemas/{UNKNOWN}/metrics/success_rate"), 404, "schema_not_found"
    )
    error(
        await client.get(f"{PERF}/schemas/{s}/metrics/success_rate", params={"period_days": -1}),
        422,
    )
    error(
        await client.get(
            f"{PERF}/schemas/{s}/metrics/success_rate", params={"confidence_level": 1}
        ),
        422,
    )
    empty = strict_json(
        await client.get(f"{PERF}/schemas/{world.empty_schema}/metrics/execution_time")
    )
    assert empty["trend"] == "insufficient_data"
    assert empty["comparison"]["error_code"] == "insufficient_data"
    assert empty["current"] == {"n": 0, "mean": None, "sd": None}


# ----------------------------------------------------------------------------- compare


def compare_body(world: World, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schema_id": str(world.perf_schema),
        "baseline_version": 1,
        "comparison_version": 2,
        "period_days": 30,
        "metrics": ["success_rate", "execution_time", "risk_score"],
    }
    body.update(kw)
    return body


async def test_compare_stores_and_reads_back(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, world: World
) -> None:
    resp = await client.post(
        f"{PERF}/compare",
        json=compare_body(world, compared_by="alice"),
        headers={"Cache-Control": "no-cache"},
    )
    body = strict_json(resp)
    assert resp.status_code == 200
    assert body["primary_metric"] == "success_rate" and body["cached"] is False
    primary = body["primary_result"]
    assert primary == body["results"]["success_rate"]
    for m in ("success_rate", "execution_time", "risk_score"):
        r = body["results"][m]
        for f in ("difference", "ci_low", "ci_high", "p_value", "effect_size"):
            assert isinstance(r[f], float), (m, f)
        assert r["ci_low"] <= r["difference"] <= r["ci_high"]
    # version 2 is better (0.94 vs 0.90) with 1500 executions per arm
    assert primary["is_significant"] and primary["direction_good"]
    assert body["recommendation"] == "adopt_comparison"

    async with db_pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM version_comparisons WHERE id = $1", uuid.UUID(body["comparison_id"])
        )
    assert row["recommendation"] == "adopt_comparison" and row["compared_by"] == "alice"
    assert row["primary_p_value"] == primary["p_value"] and row["ci_low"] == primary["ci_low"]
    assert row["metrics"] == ["success_rate", "execution_time", "risk_score"]
    assert set(row["results"]) == {"success_rate", "execution_time", "risk_score"}

    again = strict_json(await client.get(f"{PERF}/comparisons/{body['comparison_id']}"))
    assert again["results"] == body["results"] and again["recommendation"] == body["recommendation"]
    assert again["period"] == body["period"]
    error(await client.get(f"{PERF}/comparisons/{UNKNOWN}"), 404, "comparison_not_found")


async def test_compare_variants_primary_metric_and_small_samples(
    client: httpx.AsyncClient, world: World
) -> None:
    body = strict_json(
        await client.post(
            f"{PERF}/compare",
            json=compare_body(
                world,
                baseline_variant_id=str(world.perf_variant_v1),
                comparison_variant_id=str(world.perf_variant_v2),
                metrics=["execution_time", "success_rate"],
                primary_metric="success_rate",
            ),
        )
    )
    assert body["baseline"]["variant_key"] == "perf-v1-strict"
    assert body["comparison"]["variant_key"] == "perf-v2-fast"
    assert body["metrics"] == ["execution_time", "success_rate"]
    assert body["primary_metric"] == "success_rate"
    assert body["comparison"]["executions"] == 60
    assert body["recommendation"] == "needs_more_data"  # 60 < min_sample_size 100
    with_lower_min = strict_json(
        await client.post(
            f"{PERF}/compare",
            json=compare_body(
                world,
                baseline_variant_id=str(world.perf_variant_v1),
                comparison_variant_id=str(world.perf_variant_v2),
                min_sample_size=50,
            ),
        )
    )
    assert with_lower_min["recommendation"] != "needs_more_data"


async def test_compare_cache_keyed_by_inputs_and_data(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, world: World
) -> None:
    async with db_pool.acquire() as conn:
        schema = await b.create_schema(conn, "cache-schema", versions=2)
        import random

        rng = random.Random(7)
        execs = b.generate(rng, 300, schema_id=schema, version=1, days=2)
        execs += b.generate(rng, 300, schema_id=schema, version=2, days=2)
        await b.store(conn, execs)
    req = compare_body(world, schema_id=str(schema))
    first = strict_json(await client.post(f"{PERF}/compare", json=req))
    second = strict_json(await client.post(f"{PERF}/compare", json=req))
    assert second["cached"] is True and second["comparison_id"] == first["comparison_id"]
    assert second["results"] == first["results"]
    bypass = strict_json(
        await client.post(f"{PERF}/compare", json=req, headers={"Cache-Control": "no-cache"})
    )
    assert bypass["cached"] is False and bypass["comparison_id"] != first["comparison_id"]
    other = strict_json(await client.post(f"{PERF}/compare", json={**req, "confidence_level": 0.9}))
    assert other["cached"] is False
    # new executions change the summed inputs: the next request misses
    async with db_pool.acquire() as conn:
        more = b.generate(random.Random(8), 50, schema_id=schema, version=2, days=0.5)
        await b.insert_executions(conn, more)
        for row in b.hourly(more, lambda e: (e.schema_id, e.schema_version, e.variant_id)):
            await conn.execute(
                """
                INSERT INTO version_performance_metrics AS t (schema_id, schema_version, variant_id,
                    period_type, period_start, source_partition, total_executions,
                    successful_executions, failed_executions, duration_count, duration_sum,
                    duration_sum_sq)
                VALUES ($1, $2, NULL, 'hour', $3, $4, $5, $6, $7, $5, $8, $9)
                ON CONFLICT ON CONSTRAINT version_performance_metrics_natural_key DO UPDATE SET
                    total_executions = t.total_executions + EXCLUDED.total_executions,
                    successful_executions = t.successful_executions + EXCLUDED.successful_executions,
                    failed_executions = t.failed_executions + EXCLUDED.failed_executions,
                    duration_count = t.duration_count + EXCLUDED.duration_count,
                    duration_sum = t.duration_sum + EXCLUDED.duration_sum,
                    duration_sum_sq = t.duration_sum_sq + EXCLUDED.duration_sum_sq
                """,
                schema, 2, row.hour, row.partition, row.total, row.successes,
                row.total - row.successes, row.duration_sum, row.duration_sum_sq,
            )  # fmt: skip
    fresh = strict_json(await client.post(f"{PERF}/compare", json=req))
    assert fresh["cached"] is False and fresh["comparison"]["executions"] == 350


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"schema_id": UNKNOWN}, 404, "schema_not_found"),
        ({"comparison_version": 7}, 404, "version_not_found"),
        ({"baseline_variant_id": UNKNOWN}, 404, "variant_not_found"),
        ({"baseline_variant_id": "{other}"}, 422, "variant_schema_mismatch"),
        ({"comparison_variant_id": "{v1}"}, 422, "variant_version_mismatch"),
        ({"metrics": ["latency"]}, 422, "validation_failed"),
        ({"metrics": []}, 422, "validation_failed"),
        (
            {"metrics": ["execution_time"], "primary_metric": "success_rate"},
            422,
            "validation_failed",
        ),
        ({"comparison_version": 1}, 422, "validation_failed"),
        ({"period_days": 0}, 422, "validation_failed"),
        ({"period_days": 1000}, 422, "invalid_period"),
        ({"baseline_version": 2**31}, 422, "validation_failed"),
        ({"confidence_level": 1.5}, 422, "validation_failed"),
        ({"schema_id": "nope"}, 422, "validation_failed"),
        ({"unexpected": 1}, 422, "validation_failed"),
        ({"min_sample_size": 1}, 422, "validation_failed"),
    ],
)
async def test_compare_errors(
    client: httpx.AsyncClient, world: World, change: dict[str, Any], status: int, code: str
) -> None:
    fmt = {"other": world.other_variant, "v1": world.perf_variant_v1}
    body = compare_body(
        world, **{k: v.format(**fmt) if isinstance(v, str) else v for k, v in change.items()}
    )
    error(await client.post(f"{PERF}/compare", json=body), status, code)


async def test_compare_malformed_body(client: httpx.AsyncClient) -> None:
    error(
        await client.post(
            f"{PERF}/compare", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
    )
    error(await client.post(f"{PERF}/compare", json=[1, 2]), 422)


# ----------------------------------------------------------------------------- dashboard


async def test_dashboard_summary(client: httpx.AsyncClient, world: World) -> None:
    body = strict_json(await client.get(f"{PERF}/dashboard/summary", params={"period_days": 30}))
    assert body["schemas"]["total"] >= 8 and body["schemas"]["by_status"]["active"] >= 8
    assert body["experiments"]["by_status"]["running"] >= 3
    assert body["experiments"]["by_status"]["draft"] >= 1
    assert body["variants"]["total"] >= 10
    assert body["performance"]["executions"] >= len(world.executions)
    assert body["top_schemas"][0]["executions"] >= body["top_schemas"][-1]["executions"]
    assert len(body["running_experiments"]) >= 3
    assert all(r["total_executions"] >= 0 for r in body["running_experiments"])
    error(await client.get(f"{PERF}/dashboard/summary", params={"period_days": "x"}), 422)


# ----------------------------------------------------------------------------- experiments


async def test_experiment_statuses_rows(client: httpx.AsyncClient, world: World) -> None:
    async def row(name: str) -> dict[str, Any]:
        body = strict_json(
            await client.get(
                "/api/v1/experiments/statuses", params={"schema_id": str(world.schemas[name])}
            )
        )
        assert body["total"] == 1 and len(body["items"]) == 1
        return dict(body["items"][0])

    multi = await row("multi")
    assert multi["experiment_id"] == str(world.multi)
    assert multi["status"] == "running" and multi["recommendation"] == "adopt_comparison"
    assert multi["winner_variant_id"] == str(world.multi_arms["t1"])
    assert multi["winner_source"] == "analysis"
    assert multi["headline"]["variant_id"] == str(world.multi_arms["t1"])
    assert multi["headline"]["is_significant"] is True
    assert sum(v["sample_size"] for v in multi["variants"]) == multi["total_executions"] == 4350
    assert 0 < multi["progress_percent"] <= 100
    assert (await row("srm"))["srm_mismatch"] is True
    completed = await row("completed")
    assert completed["winner_variant_id"] == str(world.completed_winner)
    assert completed["winner_source"] == "recorded"
    draft = await row("draft")
    assert draft["error_code"] == "not_enough_arms" and draft["variants"] == []

    body = strict_json(await client.get("/api/v1/experiments/statuses", params={"limit": 500}))
    assert body["total"] >= 5 and len(body["items"]) == min(500, body["total"])
    created = [r["experiment_id"] for r in body["items"]]
    assert len(set(created)) == len(created)
    running = strict_json(
        await client.get("/api/v1/experiments/statuses", params={"status": "running"})
    )
    assert running["items"] and {r["status"] for r in running["items"]} == {"running"}
    page = strict_json(
        await client.get("/api/v1/experiments/statuses", params={"limit": 2, "offset": 1})
    )
    assert [r["experiment_id"] for r in page["items"]] == created[1:3]
    beyond = strict_json(
        await client.get("/api/v1/experiments/statuses", params={"offset": 10_000})
    )
    assert beyond["items"] == [] and beyond["total"] == body["total"]
    none = strict_json(
        await client.get("/api/v1/experiments/statuses", params={"schema_id": UNKNOWN})
    )
    assert none["items"] == [] and none["total"] == 0

    for params in (
        {"status": "finished"},
        {"limit": 0},
        {"limit": 501},
        {"offset": -1},
        {"schema_id": "x"},
    ):
        error(
            await client.get("/api/v1/experiments/statuses", params=params),
            422,
            "validation_failed",
        )


async def test_experiment_status_detail(
    client: httpx.AsyncClient, world: World, db_pool: asyncpg.Pool
) -> None:
    # 5 days before the session's fixture built the world, which may be many minutes ago
    started_at = await db_pool.fetchval(
        "SELECT started_at FROM experiments WHERE id = $1", world.multi
    )
    asked = datetime.now(UTC)
    body = strict_json(await client.get(f"/api/v1/experiments/{world.multi}/status"))
    answered = datetime.now(UTC)
    assert body["metrics"][0] == "success_rate" and body["secondary_metrics"] == ["execution_time"]
    assert body["multiple_comparison_correction"] == "holm"
    control = next(v for v in body["variants"] if v["is_control"])
    assert control["metrics"] == {} and control["recommendation"] is None
    for v in body["variants"]:
        assert 0 <= v["completion_percent"] <= 100
        assert set(v["summary"]) == {"success_rate", "execution_time", "risk_score"}
    p = body["progress"]
    # elapsed from started_at to the app's "now", which lies between asked and answered
    # (the app runs in this process); a few seconds of slack, 6e-5 days
    slack = timedelta(seconds=5)
    days = [(t - started_at) / timedelta(days=1) for t in (asked - slack, answered + slack)]
    assert days[0] <= p["days_elapsed"] <= days[1], (p["days_elapsed"], days)
    assert days[0] > 4.99  # the fixture's started_days_ago=5.0
    if p["days_remaining"]:
        assert p["projected_completion_at"] is not None


async def test_experiment_status_edge_cases(client: httpx.AsyncClient, world: World) -> None:
    draft = strict_json(await client.get(f"/api/v1/experiments/{world.draft}/status"))
    assert draft["error_code"] == "not_enough_arms" and draft["recommendation"] == "needs_more_data"
    assert (
        draft["progress"]["basis"] == "min_sample_size"
        and draft["progress"]["days_elapsed"] is None
    )

    srm = strict_json(await client.get(f"/api/v1/experiments/{world.srm}/status"))
    assert srm["srm"]["observed"] == [1000, 700] and srm["srm"]["is_mismatch"] is True
    assert "sample_ratio_mismatch" in srm["warnings"]
    assert srm["recommendation"] == "needs_more_data"  # 30 and 20 executions < 100
    assert srm["progress"]["basis"] == "min_sample_size"
    assert srm["progress"]["progress_percent"] == pytest.approx(20.0)

    done = strict_json(await client.get(f"/api/v1/experiments/{world.completed}/status"))
    assert done["recorded_winner_variant_id"] == str(world.completed_winner)
    assert done["recorded_p_value"] == 0.01 and done["total_executions"] == 0
    assert done["progress"]["projected_completion_at"] is None
    # no data at all: every metric undefined, still JSON-safe
    for v in done["variants"]:
        for r in v["metrics"].values():
            assert r["error_code"] == "insufficient_data" and r["p_value"] is None

    error(await client.get(f"/api/v1/experiments/{UNKNOWN}/status"), 404, "experiment_not_found")
    error(await client.get("/api/v1/experiments/123/status"), 422, "validation_failed")


async def test_winner_preview(client: httpx.AsyncClient, world: World) -> None:
    body = strict_json(await client.get(f"/api/v1/experiments/{world.multi}/winner"))
    status = strict_json(await client.get(f"/api/v1/experiments/{world.multi}/status"))
    t1 = next(v for v in status["variants"] if v["variant_id"] == str(world.multi_arms["t1"]))
    assert body["winner_variant_id"] == str(world.multi_arms["t1"])
    assert body["p_value"] == t1["metrics"]["success_rate"]["p_value_adjusted"]
    assert body["effect_size"] == t1["metrics"]["success_rate"]["effect_size"]
    assert body["results"]["experiment_id"] == str(world.multi)
    none = strict_json(await client.get(f"/api/v1/experiments/{world.draft}/winner"))
    assert none["winner_variant_id"] is None and none["p_value"] is None
    error(await client.get(f"/api/v1/experiments/{UNKNOWN}/winner"), 404, "experiment_not_found")


async def test_per_variant_gauges(
    analysis_app: Any, client: httpx.AsyncClient, world: World
) -> None:
    await analysis_app.state.gauges.refresh()
    text = (await client.get("/metrics")).text
    status = strict_json(await client.get(f"/api/v1/experiments/{world.multi}/status"))
    key = status["experiment_key"]
    for v in status["variants"]:
        labels = f'control="{str(v["is_control"]).lower()}",experiment="{key}",variant="{v["variant_key"]}"'
        assert f"abflow_analysis_variant_executions{{{labels}}} {float(v['sample_size'])}" in text
        rate = v["summary"]["success_rate"]["mean"]
        assert f"abflow_analysis_variant_success_rate{{{labels}}} {rate!r}" in text
        assert f"abflow_analysis_variant_execution_time_mean_ms{{{labels}}}" in text
    completed = strict_json(await client.get(f"/api/v1/experiments/{world.completed}/status"))
    assert f'experiment="{completed["experiment_key"]}"' not in text  # only running/paused
    health = strict_json(await client.get("/health"))
    assert health["components"]["variant_gauges"]["series"] >= 3
