"""The app builds without a database and documents every route."""

from __future__ import annotations

import httpx
import pytest

from services.analysis.main import create_app
from services.analysis.settings import AnalysisSettings
from tests.conftest import KEYS

pytestmark = pytest.mark.unit


def test_openapi_lists_every_route() -> None:
    spec = create_app(AnalysisSettings()).openapi()
    assert {
        "/api/v1/performance/schemas/{schema_id}/summary",
        "/api/v1/performance/schemas/{schema_id}/trends",
        "/api/v1/performance/schemas/{schema_id}/metrics/{metric}",
        "/api/v1/performance/compare",
        "/api/v1/performance/comparisons/{comparison_id}",
        "/api/v1/performance/dashboard/summary",
        "/api/v1/experiments/statuses",
        "/api/v1/experiments/{experiment_id}/status",
    } <= set(spec["paths"])
    ok = spec["paths"]["/api/v1/performance/compare"]["post"]["responses"]["200"]
    assert "VersionComparisonResult" in str(ok)


async def test_requests_before_the_pool_started_are_503() -> None:
    app = create_app(AnalysisSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://a", headers=KEYS.headers("read")
    ) as c:
        resp = await c.get("/api/v1/experiments/00000000-0000-4000-8000-000000000000/status")
    assert resp.status_code == 503 and resp.json()["error"] == "database_unavailable"
