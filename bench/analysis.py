"""Analysis latency benchmark: ``POST /api/v1/performance/compare`` and
``GET /api/v1/experiments/{id}/status`` when the aggregates stand for 10 thousand and for
10 million executions.

Run: ``source .stack/env && .venv/bin/python bench/analysis.py [--requests 400]``. Prints a
human summary, then one JSON object on its last line.

Method: a fresh database on the server of ``DATABASE_URL`` (migrated, dropped at the end
unless ``--keep``) holds two identical worlds that differ only in their counts. Each world
has a schema with versions 1 and 2 and a running 50/50 experiment; every entity has one
hourly row per UTC hour of the last 30 days and per source partition (30 × 24 × 6 = 4,320
rows per arm, as the aggregator writes them, with a DDSketch in ``duration_sketch``), whose
counts add up to 10,000 or 10,000,000 executions per world. Exposed units: 1,000 and
100,000. The service runs as a real ``uvicorn`` subprocess (one worker) on loopback; a
synchronous ``httpx`` client sends the requests one at a time, the two worlds interleaved
so that background load hits both alike, after a warm-up. ``/compare`` is measured
uncached (``Cache-Control: no-cache``: every request sums, tests and INSERTs a row into
``version_comparisons``) and cached (same key: sums and a cache hit); ``/status`` with the
exposed-unit counts cached (default, 15 s) and uncached (``Cache-Control: no-cache``: the
SRM input is counted, one index entry per exposed unit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from shared.auth import ApiKeyEntry, Scope, hash_key, new_key
from shared.db.migrate import apply_migrations

ROOT = Path(__file__).resolve().parent.parent
P99_TARGET_MS = 50.0
DAYS, PARTITIONS = 30, 6
SCENARIOS = {"10k": (10_000, 1_000), "10m": (10_000_000, 100_000)}  # events, exposed units
DEFINITION = {"workflow_steps": [], "risk_config": {}, "config": {}}
METRIC_COLUMNS = [
    "period_type", "period_start", "source_partition", "total_executions",
    "successful_executions", "failed_executions", "duration_count", "duration_sum",
    "duration_sum_sq", "duration_min", "duration_max", "risk_count", "risk_sum", "risk_sum_sq",
    "risk_min", "risk_max", "duration_sketch", "p50_execution_time_ms", "p95_execution_time_ms",
    "p99_execution_time_ms",
]  # fmt: skip


# ----------------------------------------------------------------------------- data


def _sketch(rng: random.Random, n: int, median: float) -> tuple[bytes, list[float]]:
    """A sketch in the aggregator's format 1 for n log-normal durations (bins scaled)."""
    gamma = 1.01 / 0.99
    mult = 1.0 / math.log(gamma)
    centre = math.ceil(math.log(median) * mult)
    width = int(0.6 * 3 * mult)  # ±3 sigma of a log-normal with sigma 0.6
    keys = list(range(centre - width, centre + width + 1))
    weights = [math.exp(-0.5 * ((k - centre) / (0.6 * mult)) ** 2) for k in keys]
    total = sum(weights)
    counts = [n * w / total for w in weights]
    head = struct.pack("<2sBddI", b"DS", 1, 0.01, 0.0, len(keys))
    blob = head + struct.pack(f"<{len(keys)}i", *keys) + struct.pack(f"<{len(keys)}d", *counts)
    qs = [median * math.exp(0.6 * z) for z in (0.0, 1.645, 2.326)]
    return blob, qs


def _split(rng: random.Random, total: int, slots: int) -> list[int]:
    """``total`` events spread over ``slots`` hourly rows (multinomial-like, sums exactly)."""
    base = total // slots
    counts = [base] * slots
    for i in rng.sample(range(slots), total - base * slots):
        counts[i] += 1
    return counts


def _rows(rng: random.Random, total: int, p: float, median: float) -> list[tuple[Any, ...]]:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [end - timedelta(hours=h) for h in range(DAYS * 24)]
    slots = [(h, part) for h in hours for part in range(PARTITIONS)]
    blob_cache: dict[int, tuple[bytes, list[float]]] = {}
    out = []
    mean, sd = median * math.exp(0.18), median * 0.65
    for (hour, part), n in zip(slots, _split(rng, total, len(slots)), strict=True):
        if n == 0:
            continue
        succ = min(n, max(0, round(n * p + rng.gauss(0, math.sqrt(n * p * (1 - p))))))
        m = mean * (1 + rng.gauss(0, 0.02))
        s_sum = n * m
        s_sq = (n - 1) * sd * sd + n * m * m
        r_cnt = n
        r_m = 0.3 * (1 + rng.gauss(0, 0.02))
        r_sum, r_sq = r_cnt * r_m, (r_cnt - 1) * 0.01 + r_cnt * r_m * r_m
        if n not in blob_cache:
            blob_cache[n] = _sketch(rng, n, median)
        blob, qs = blob_cache[n]
        out.append(
            ("hour", hour, part, n, succ, n - succ, n, s_sum, s_sq, median * 0.2, median * 6,
             r_cnt, r_sum, r_sq, 0.01, 0.95, blob, *qs)
        )  # fmt: skip
    return out


async def seed(conn: asyncpg.Connection, name: str, events: int, units: int) -> dict[str, Any]:
    rng = random.Random(sum(map(ord, name)))
    async with conn.transaction():
        sid = await conn.fetchval(
            "INSERT INTO workflow_schemas (key, name, current_version) VALUES ($1, $1, 2) RETURNING id",
            f"bench-{name}",
        )
        for v in (1, 2):
            await conn.execute(
                "INSERT INTO workflow_schema_versions (schema_id, version_number, definition) "
                "VALUES ($1, $2, $3)",
                sid, v, json.dumps(DEFINITION),
            )  # fmt: skip
    arms = [
        await conn.fetchval(
            "INSERT INTO schema_variants (schema_id, base_version, variant_key) VALUES ($1, 1, $2) "
            "RETURNING id",
            sid,
            key,
        )
        for key in ("control", "treatment")
    ]
    eid = await conn.fetchval(
        "INSERT INTO experiments (experiment_key, experiment_name, schema_id, hash_seed, "
        "secondary_metrics, minimum_detectable_effect) "
        "VALUES ($1, $1, $2, $1, '{execution_time,risk_score}', 0.02) RETURNING id",
        f"bench-{name}", sid,
    )  # fmt: skip
    for pos, vid in enumerate(arms):
        await conn.execute(
            "INSERT INTO experiment_variants (experiment_id, variant_id, position, is_control, "
            "traffic_percentage) VALUES ($1, $2, $3, $4, 50)",
            eid, vid, pos, pos == 0,
        )  # fmt: skip
    await conn.execute(
        "UPDATE experiments SET status = 'running', started_at = now() - interval '30 days' "
        "WHERE id = $1",
        eid,
    )
    half = events // 2
    for version, p, median in ((1, 0.90, 400.0), (2, 0.905, 395.0)):
        await conn.copy_records_to_table(
            "version_performance_metrics",
            columns=["schema_id", "schema_version", "variant_id", *METRIC_COLUMNS],
            records=[(sid, version, None, *r) for r in _rows(rng, half, p, median)],
        )
    for vid, p, median in ((arms[0], 0.90, 400.0), (arms[1], 0.905, 395.0)):
        await conn.copy_records_to_table(
            "experiment_variant_metrics",
            columns=["experiment_id", "variant_id", *METRIC_COLUMNS],
            records=[
                (eid, vid, *r)
                for r in _rows(rng, events - half if vid == arms[1] else half, p, median)
            ],
        )
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "experiment_exposures",
        columns=["experiment_id", "unit_id", "variant_id", "first_exposed_at", "bucket"],
        records=[(eid, f"u{i}", arms[i % 2], now, (i % 10000) / 10000) for i in range(units)],
    )
    rows = await conn.fetchval(
        "SELECT count(*) FROM experiment_variant_metrics WHERE experiment_id = $1", eid
    )
    return {"schema_id": str(sid), "experiment_id": str(eid), "experiment_rows": rows}


# ----------------------------------------------------------------------------- server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


API_KEY = new_key()  # the server checks it like production


def start_server(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "API_KEYS": ApiKeyEntry("bench", Scope.READ, hash_key(API_KEY)).render(),
        "DATABASE_URL": database_url,
        "ANALYSIS_COMPARE_CACHE_TTL_S": "3600",
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "services.analysis.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"uvicorn exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("uvicorn did not become ready")


# ----------------------------------------------------------------------------- measuring


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, math.ceil(q * len(s)) - 1)]


def measure(
    base: str, worlds: dict[str, dict[str, Any]], requests: int, warmup: int
) -> dict[str, Any]:
    calls: dict[str, tuple[str, str, dict[str, Any] | None, dict[str, str]]] = {}
    for name, w in worlds.items():
        body = {"schema_id": w["schema_id"], "baseline_version": 1, "comparison_version": 2,
                "period_days": 30, "metrics": ["success_rate", "execution_time", "risk_score"]}  # fmt: skip
        calls[f"compare_{name}"] = (
            "POST",
            "/api/v1/performance/compare",
            body,
            {"Cache-Control": "no-cache"},
        )
        calls[f"compare_cached_{name}"] = ("POST", "/api/v1/performance/compare", body, {})
        status = f"/api/v1/experiments/{w['experiment_id']}/status"
        calls[f"status_{name}"] = ("GET", status, None, {})
        calls[f"status_uncached_{name}"] = ("GET", status, None, {"Cache-Control": "no-cache"})
    lat: dict[str, list[float]] = {k: [] for k in calls}
    samples: dict[str, Any] = {}
    auth = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=base, timeout=10, headers=auth) as client:
        for i in range(warmup + requests):
            for key, (method, path, body, headers) in calls.items():
                t0 = time.perf_counter()
                resp = client.request(method, path, json=body, headers=headers)
                dt = (time.perf_counter() - t0) * 1000
                if resp.status_code != 200:
                    raise RuntimeError(f"{key}: {resp.status_code} {resp.text[:300]}")
                if i >= warmup:
                    lat[key].append(dt)
                elif i == 0:
                    samples[key] = resp.json()
    out: dict[str, Any] = {}
    for key, xs in lat.items():
        out[f"{key}_p50_ms"] = round(statistics.median(xs), 3)
        out[f"{key}_p99_ms"] = round(_pct(xs, 0.99), 3)
    out["_samples"] = samples
    return out


async def run(requests: int, warmup: int, keep: bool) -> dict[str, Any]:
    admin = os.environ.get("DATABASE_URL")
    if not admin:
        raise SystemExit("DATABASE_URL is not set: `source .stack/env` first")
    name = f"abflow_bench_analysis_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    proc = None
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations(conn)
            t0 = time.perf_counter()
            worlds = {k: await seed(conn, k, ev, units) for k, (ev, units) in SCENARIOS.items()}
            await conn.execute("VACUUM ANALYZE")  # the steady state autovacuum maintains
            seed_s = time.perf_counter() - t0
        finally:
            await conn.close()
        proc, base = start_server(url)
        load_before = os.getloadavg()[0]
        m = await asyncio.to_thread(measure, base, worlds, requests, warmup)
        load_after = os.getloadavg()[0]
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not keep:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
    samples = m.pop("_samples")
    checks = {}
    for k, (events, units) in SCENARIOS.items():
        st = samples[f"status_{k}"]
        cmp_ = samples[f"compare_{k}"]
        checks[k] = {
            "events_in_experiment": st["total_executions"],
            "exposed_units": st["exposed_units"],
            "events_compared": cmp_["baseline"]["executions"] + cmp_["comparison"]["executions"],
            "hourly_rows_per_experiment": worlds[k]["experiment_rows"],
        }
        assert st["total_executions"] == events and st["exposed_units"] == units
        assert checks[k]["events_compared"] == events
    worst = max(m[f"{e}_{k}_p99_ms"] for e in ("compare", "status") for k in SCENARIOS)
    result: dict[str, Any] = {
        "benchmark": "analysis",
        "requests_per_endpoint": requests,
        **m,
        "p99_ratio_10m_over_10k_compare": round(
            m["compare_10m_p99_ms"] / m["compare_10k_p99_ms"], 2
        ),
        "p99_ratio_10m_over_10k_status": round(m["status_10m_p99_ms"] / m["status_10k_p99_ms"], 2),
        "target_p99_ms": P99_TARGET_MS,
        "target_met": worst <= P99_TARGET_MS,
        "scenarios": checks,
        "seed_s": round(seed_s, 1),
        "cpus": os.cpu_count(),
        "loadavg_1m_before_after": [round(load_before, 2), round(load_after, 2)],
    }
    return result


def _summary(r: dict[str, Any]) -> str:
    lines = [f"analysis latency over loopback, {r['requests_per_endpoint']} requests per endpoint"]
    for k in SCENARIOS:
        sc = r["scenarios"][k]
        lines.append(
            f"  {k}: {sc['events_in_experiment']:,} events, {sc['hourly_rows_per_experiment']:,} "
            f"hourly rows per experiment, {sc['exposed_units']:,} exposed units"
        )
        for e in ("compare", "compare_cached", "status", "status_uncached"):
            lines.append(
                f"    {e:<15} p50 {r[f'{e}_{k}_p50_ms']:7.2f} ms   p99 {r[f'{e}_{k}_p99_ms']:7.2f} ms"
            )
    lines.append(f"  p99 target <= {P99_TARGET_MS} ms: {'ok' if r['target_met'] else 'MISSED'}")
    lines.append(
        f"  machine: {r['cpus']} CPUs, 1-min load average before/after "
        f"{r['loadavg_1m_before_after']} (other processes included)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=400, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    result = asyncio.run(run(args.requests, args.warmup, args.keep))
    print(_summary(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
