"""Consistency: what the API computes from the hourly aggregates equals what scipy and
statsmodels compute from the raw executions in ``workflow_executions`` (1e-9 relative).

The aggregates were derived from the same raw executions by the test's own simple
aggregation (``builders.py``); the service never reads the raw table.
"""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from shared.results import determine_winner
from tests.integration.analysis.conftest import World, strict_json

pytestmark = pytest.mark.integration

REL = 1e-9
METRICS = ("success_rate", "execution_time", "risk_score")


def close(actual: Any, expected: float, scale: float = 1.0) -> bool:
    """Relative 1e-9, with an absolute floor of 1e-9 × the quantity's scale near zero."""
    return actual is not None and math.isclose(
        actual, expected, rel_tol=REL, abs_tol=REL * 1e-3 * scale
    )


async def raw_values(
    conn: asyncpg.Connection, sql: str, *args: Any
) -> dict[UUID | None, dict[str, np.ndarray]]:
    rows = await conn.fetch(sql, *args)
    out: dict[UUID | None, dict[str, list[float]]] = {}
    for r in rows:
        d = out.setdefault(r["variant_id"], {m: [] for m in METRICS})
        d["success_rate"].append(1.0 if r["success"] else 0.0)
        d["execution_time"].append(r["duration_ms"])
        if r["risk_score"] is not None:
            d["risk_score"].append(r["risk_score"])
    return {k: {m: np.asarray(v, dtype=float) for m, v in d.items()} for k, d in out.items()}


def reference(metric: str, x1: np.ndarray, x2: np.ndarray, cl: float) -> dict[str, float]:
    """Reference comparison of comparison x2 against baseline x1 from raw values."""
    n1, n2 = len(x1), len(x2)
    if metric == "success_rate":
        s1, s2 = int(x1.sum()), int(x2.sum())
        p1, p2 = s1 / n1, s2 / n2
        z, p_z = proportions_ztest([s2, s1], [n2, n1])
        _chi2, p_chi, _, _ = stats.chi2_contingency(
            [[s1, n1 - s1], [s2, n2 - s2]], correction=False
        )
        assert math.isclose(p_z, p_chi, rel_tol=1e-9)
        se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        crit = stats.norm.ppf(1 - (1 - cl) / 2)
        diff = p2 - p1
        lift_var = (p2 * (1 - p2) / n2 + (p2 / p1) ** 2 * p1 * (1 - p1) / n1) / p1**2
        return {
            "n1": n1, "n2": n2, "m1": p1, "m2": p2, "sd1": math.sqrt(p1 * (1 - p1)),
            "sd2": math.sqrt(p2 * (1 - p2)), "diff": diff, "ci_low": diff - crit * se,
            "ci_high": diff + crit * se, "p": float(p_chi), "stat": float(z), "df": None,
            "effect": 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1)),
            "lift": p2 / p1 - 1, "lift_low": p2 / p1 - 1 - crit * math.sqrt(lift_var),
            "lift_high": p2 / p1 - 1 + crit * math.sqrt(lift_var), "se": se,
        }  # fmt: skip
    res = stats.ttest_ind(x2, x1, equal_var=False)
    ci = res.confidence_interval(confidence_level=cl)
    m1, m2 = float(np.mean(x1)), float(np.mean(x2))
    v1, v2 = float(np.var(x1, ddof=1)), float(np.var(x2, ddof=1))
    sp = math.sqrt(((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2))
    crit = stats.t.ppf(1 - (1 - cl) / 2, res.df)
    lift_var = (v2 / n2 + (m2 / m1) ** 2 * v1 / n1) / m1**2
    return {
        "n1": n1, "n2": n2, "m1": m1, "m2": m2, "sd1": math.sqrt(v1), "sd2": math.sqrt(v2),
        "diff": m2 - m1, "ci_low": float(ci.low), "ci_high": float(ci.high),
        "p": float(res.pvalue), "stat": float(res.statistic), "df": float(res.df),
        "effect": (m2 - m1) / sp, "lift": m2 / m1 - 1,
        "lift_low": m2 / m1 - 1 - crit * math.sqrt(lift_var),
        "lift_high": m2 / m1 - 1 + crit * math.sqrt(lift_var),
        "se": math.sqrt(v1 / n1 + v2 / n2),
    }  # fmt: skip


def assert_matches(r: dict[str, Any], ref: dict[str, float], *, check_ci: bool = True) -> None:
    scale = max(abs(ref["m1"]), abs(ref["m2"]), 1e-300)
    assert r["baseline"]["n"] == ref["n1"] and r["comparison"]["n"] == ref["n2"]
    assert close(r["baseline"]["mean"], ref["m1"], scale)
    assert close(r["comparison"]["mean"], ref["m2"], scale)
    assert close(r["baseline"]["sd"], ref["sd1"], scale)
    assert close(r["comparison"]["sd"], ref["sd2"], scale)
    assert close(r["difference"], ref["diff"], scale), (r["difference"], ref["diff"])
    assert close(r["effect_size"], ref["effect"], 1.0)
    assert close(r["relative_lift"], ref["lift"], 1.0)
    if check_ci:
        assert close(r["ci_low"], ref["ci_low"], scale), (r["ci_low"], ref["ci_low"])
        assert close(r["ci_high"], ref["ci_high"], scale)
        assert close(r["lift_ci_low"], ref["lift_low"], 1.0)
        assert close(r["lift_ci_high"], ref["lift_high"], 1.0)
        assert close(r["p_value"], ref["p"], 1.0), (r["p_value"], ref["p"])
        assert close(r["statistic"], ref["stat"], 1.0)
        if ref["df"] is not None:
            assert close(r["df"], ref["df"], 1.0)


EXPERIMENT_RAW_SQL = (
    "SELECT variant_id, success, duration_ms, risk_score FROM workflow_executions "
    "WHERE experiment_id = $1"
)


async def test_experiment_status_equals_scipy_on_raw_executions(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, world: World
) -> None:
    resp = await client.get(f"/api/v1/experiments/{world.multi}/status")
    assert resp.status_code == 200, resp.text
    body = strict_json(resp)
    async with db_pool.acquire() as conn:
        raw = await raw_values(conn, EXPERIMENT_RAW_SQL, world.multi)
        units = {
            r["variant_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT variant_id, count(DISTINCT unit_id) AS n FROM workflow_executions "
                "WHERE experiment_id = $1 GROUP BY variant_id",
                world.multi,
            )
        }
    control = world.multi_arms["control"]
    treatments = [world.multi_arms["t1"], world.multi_arms["t2"]]
    variants = {UUID(v["variant_id"]): v for v in body["variants"]}
    assert body["control_variant_id"] == str(control)
    cl = body["confidence_level"]

    for metric in METRICS:
        refs = [reference(metric, raw[control][metric], raw[t][metric], cl) for t in treatments]
        holm = multipletests([ref["p"] for ref in refs], method="holm")[1]
        for t, ref, p_adj in zip(treatments, refs, holm, strict=True):
            r = variants[t]["metrics"][metric]
            assert_matches(r, ref)
            assert close(r["p_value_adjusted"], float(p_adj), 1.0)
            assert r["is_significant"] == (p_adj < 1 - cl)
        # the control's own summary equals the raw values too
        assert variants[control]["summary"][metric]["n"] == len(raw[control][metric])

    # sample sizes, SRM on distinct exposed units against the 34/33/33 split
    for vid, v in variants.items():
        assert v["sample_size"] == len(raw[vid]["success_rate"])
        assert v["exposed_units"] == units[vid]
    order = [control, *treatments]
    observed = [units[v] for v in order]
    weights = np.array([34, 33, 33], dtype=float)
    chi = stats.chisquare(observed, f_exp=sum(observed) * weights / weights.sum())
    assert close(body["srm"]["statistic"], float(chi.statistic))
    assert close(body["srm"]["p_value"], float(chi.pvalue))
    assert body["srm"]["is_mismatch"] is bool(chi.pvalue < 0.001)

    # recommendation rule applied to the raw verdicts; t1 has a planted improvement
    t1 = variants[world.multi_arms["t1"]]["metrics"]["success_rate"]
    assert t1["is_significant"] and t1["direction_good"]
    assert variants[world.multi_arms["t1"]]["recommendation"] == "adopt_comparison"
    assert body["recommendation"] == "adopt_comparison"
    assert body["winner_variant_id"] == str(world.multi_arms["t1"])

    # progress: planned n for a 5% relative MDE on the control's raw success rate
    p1 = float(raw[control]["success_rate"].mean())
    p2 = p1 * 1.05
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    pbar = (p1 + p2) / 2
    n_req = math.ceil(
        (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
        / (p2 - p1) ** 2
        - 1e-9
    )
    assert body["progress"]["basis"] == "minimum_detectable_effect"
    assert body["progress"]["required_n_per_arm"] == n_req
    min_n = min(len(raw[v]["success_rate"]) for v in order)
    assert body["progress"]["min_arm_n"] == min_n
    assert close(body["progress"]["progress_percent"], min(100.0, 100.0 * min_n / n_req))

    # the control plane's entry point agrees with the API
    async with db_pool.acquire() as conn:
        decision = await determine_winner(conn, world.multi)
    assert decision.winner_variant_id == world.multi_arms["t1"]
    assert decision.p_value == t1["p_value_adjusted"]
    assert decision.effect_size == t1["effect_size"]
    assert decision.results["experiment_id"] == str(world.multi)


def _sequential_reference(
    diff: float, se: float, n: int, alpha: float, tuning: float
) -> tuple[float, float, float]:
    """Asymptotic confidence sequence (Waudby-Smith et al.; gbstats parameterisation)."""
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    sigma = se * math.sqrt(n)
    half = sigma * math.sqrt(
        2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
    )
    z = diff / se
    p = min(1.0, math.sqrt(n * rho2 + 1) * math.exp(-n * rho2 * z * z / (2 * (n * rho2 + 1))))
    return diff - half, diff + half, p


async def test_sequential_experiment_equals_confidence_sequence_on_raw(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, world: World
) -> None:
    body = strict_json(await client.get(f"/api/v1/experiments/{world.sequential}/status"))
    assert body["sequential_testing"] is True and body["confidence_level"] == 0.9
    async with db_pool.acquire() as conn:
        raw = await raw_values(conn, EXPERIMENT_RAW_SQL, world.sequential)
    base, fast = world.sequential_arms["base"], world.sequential_arms["fast"]
    treat = next(v for v in body["variants"] if v["variant_id"] == str(fast))
    for metric in METRICS:
        ref = reference(metric, raw[base][metric], raw[fast][metric], 0.9)
        r = treat["metrics"][metric]
        assert r["method"].startswith("sequential_")
        assert_matches(r, ref, check_ci=False)
        low, high, p = _sequential_reference(
            ref["diff"], ref["se"], ref["n1"] + ref["n2"], 0.1, 2000.0
        )
        scale = max(abs(ref["m1"]), abs(ref["m2"]))
        assert close(r["ci_low"], low, scale) and close(r["ci_high"], high, scale)
        assert close(r["p_value"], p)
        assert r["is_significant"] == (p < 0.1)
    # planned n per arm for a 5% relative MDE on the control's mean and sd, α = 0.1
    x = raw[base]["execution_time"]
    sd, mu = float(np.std(x, ddof=1)), float(np.mean(x))
    n_req = math.ceil(
        2 * sd**2 * (stats.norm.ppf(0.95) + stats.norm.ppf(0.8)) ** 2 / (0.05 * mu) ** 2 - 1e-9
    )
    assert body["progress"]["required_n_per_arm"] == n_req


async def test_compare_equals_scipy_on_raw_executions(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, world: World
) -> None:
    resp = await client.post(
        "/api/v1/performance/compare",
        json={
            "schema_id": str(world.perf_schema),
            "baseline_version": 1,
            "comparison_version": 2,
            "period_days": 30,
            "metrics": ["success_rate", "execution_time", "risk_score"],
        },
        headers={"Cache-Control": "no-cache"},
    )
    assert resp.status_code == 200, resp.text
    body = strict_json(resp)
    period = body["period"]
    async with db_pool.acquire() as conn:
        raw = await raw_values(
            conn,
            "SELECT schema_version AS variant_id, success, duration_ms, risk_score "
            "FROM workflow_executions WHERE schema_id = $1 AND variant_id IS NULL "
            "AND completed_at >= $2 AND completed_at < $3",
            world.perf_schema,
            _ts(period["start"]),
            _ts(period["end"]),
        )
    for metric in METRICS:
        ref = reference(metric, raw[1][metric], raw[2][metric], 0.95)  # type: ignore[index]
        assert_matches(body["results"][metric], ref)
    assert body["baseline"]["executions"] == len(raw[1]["success_rate"])  # type: ignore[index]


async def test_summary_percentiles_within_sketch_accuracy_of_raw(
    client: httpx.AsyncClient, db_pool: asyncpg.Pool, world: World
) -> None:
    body = strict_json(await client.get(f"/api/v1/performance/schemas/{world.perf_schema}/summary"))
    row = next(v for v in body["versions"] if v["schema_version"] == 1 and v["variant_id"] is None)
    async with db_pool.acquire() as conn:
        values = await conn.fetch(
            "SELECT duration_ms FROM workflow_executions WHERE schema_id = $1 AND schema_version = 1 "
            "AND variant_id IS NULL AND completed_at >= $2 ORDER BY duration_ms",
            world.perf_schema,
            _ts(body["period"]["start"]),
        )
    xs = [r["duration_ms"] for r in values]
    assert row["executions"] == len(xs)
    assert row["percentile_coverage"] == 1.0
    assert close(row["avg_execution_time_ms"], float(np.mean(xs)), float(np.mean(xs)))
    assert close(row["stddev_execution_time_ms"], float(np.std(xs, ddof=1)), float(np.mean(xs)))
    assert row["min_execution_time_ms"] == xs[0] and row["max_execution_time_ms"] == xs[-1]
    for q, field in (
        (0.5, "p50_execution_time_ms"),
        (0.95, "p95_execution_time_ms"),
        (0.99, "p99_execution_time_ms"),
    ):
        exact = xs[math.floor(q * (len(xs) - 1))]
        assert abs(row[field] - exact) <= 0.01 * exact + 1e-9, (q, row[field], exact)


def _ts(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
