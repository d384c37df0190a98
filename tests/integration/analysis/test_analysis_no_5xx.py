"""No input yields a 5xx: odd path segments, query values and bodies on every route."""

from __future__ import annotations

import itertools
import random
from typing import Any

import httpx
import pytest

from tests.integration.analysis.conftest import World, strict_json

pytestmark = pytest.mark.integration

ODD = [
    "", "0", "-1", "1e3", "NaN", "nan", "inf", "-Infinity", "2147483648", "9" * 30, "true",
    "null", "%00", "é", "base", "all", "00000000-0000-0000-0000-000000000000", "1.5",
    "2024-13-45", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-12:00",
    # (in UTC these fall outside datetime's years 1-9999)
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00", "' OR 1=1 --",
]  # fmt: skip


def routes(w: World) -> list[tuple[str, str, list[str]]]:
    s = str(w.perf_schema)
    return [
        ("GET", f"/api/v1/performance/schemas/{s}/summary", ["period_days", "start", "end"]),
        (
            "GET",
            f"/api/v1/performance/schemas/{s}/trends",
            ["granularity", "periods", "version", "variant"],
        ),
        (
            "GET",
            f"/api/v1/performance/schemas/{s}/metrics/success_rate",
            ["period_days", "start", "end", "version", "variant", "confidence_level"],
        ),
        ("GET", "/api/v1/performance/dashboard/summary", ["period_days"]),
        ("GET", "/api/v1/experiments/statuses", ["status", "schema_id", "limit", "offset"]),
    ]


async def test_odd_query_values_never_5xx(client: httpx.AsyncClient, world: World) -> None:
    rng = random.Random(5)
    for method, path, params in routes(world):
        for name, value in itertools.product(params, ODD):
            resp = await client.request(method, path, params={name: value})
            assert resp.status_code < 500, (path, name, value, resp.text)
            strict_json(resp)
        for _ in range(40):
            q = {p: rng.choice(ODD) for p in rng.sample(params, k=rng.randint(1, len(params)))}
            resp = await client.request(method, path, params=q)
            assert resp.status_code < 500, (path, q, resp.text)


async def test_odd_path_segments_never_5xx(client: httpx.AsyncClient, world: World) -> None:
    for seg in [*ODD[1:], "x" * 5000]:
        for path in (
            f"/api/v1/performance/schemas/{seg}/summary",
            f"/api/v1/performance/schemas/{world.perf_schema}/metrics/{seg}",
            f"/api/v1/performance/comparisons/{seg}",
            f"/api/v1/experiments/{seg}/status",
        ):
            resp = await client.get(path)
            assert resp.status_code < 500, (path, resp.text)


async def test_odd_compare_bodies_never_5xx(client: httpx.AsyncClient, world: World) -> None:
    rng = random.Random(6)
    values: list[Any] = [
        None, 0, -1, 1, 2, 2**31, 2**63, 1.5, float("1e308"), "", "x", [], {}, True,
        str(world.perf_schema), str(world.perf_variant_v1), ["success_rate"], ["nope"],
    ]  # fmt: skip
    fields = [
        "schema_id", "baseline_version", "comparison_version", "baseline_variant_id",
        "comparison_variant_id", "period_days", "metrics", "primary_metric", "confidence_level",
        "min_sample_size", "compared_by",
    ]  # fmt: skip
    base = {"schema_id": str(world.perf_schema), "baseline_version": 1, "comparison_version": 2}
    for _ in range(300):
        body = dict(base)
        for f in rng.sample(fields, k=rng.randint(1, 4)):
            body[f] = rng.choice(values)
        resp = await client.post("/api/v1/performance/compare", json=body)
        assert resp.status_code < 500, (body, resp.text)
        strict_json(resp)
    for raw in (b"", b"null", b"[]", b"{", b'{"schema_id": NaN}', "é".encode(), b"\xff\xfe"):
        resp = await client.post(
            "/api/v1/performance/compare", content=raw, headers={"content-type": "application/json"}
        )
        assert resp.status_code < 500, (raw, resp.text)
