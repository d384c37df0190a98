"""Composition root of the analysis service.

Run: ``uvicorn services.analysis.main:app``. Components: the asyncpg pool and the
per-variant gauges refresher; routers for ``/api/v1/performance`` and the experiment
results; database failures (server down, statement timeout) answer 503
``database_unavailable`` instead of 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.analysis.cache import TTLCache
from services.analysis.comparisons import VersionComparisonResult
from services.analysis.database import DatabaseComponent
from services.analysis.experiments import ExposureCache
from services.analysis.gauges import VariantGauges
from services.analysis.routes import routers
from services.analysis.settings import AnalysisSettings
from shared.http import Component, create_service_app, error_body

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Performance of workflow schemas, versions and variants and statistical results of "
    "experiments, computed on demand from the hourly aggregates in PostgreSQL (cost "
    "independent of the number of executions)."
)


class _CacheCollector(Collector):
    def __init__(self, cache: TTLCache[VersionComparisonResult]) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        c = CounterMetricFamily(
            "analysis_compare_cache_lookups", "Comparison cache lookups", labels=["result"]
        )
        c.add_metric(["hit"], self.cache.hits)
        c.add_metric(["miss"], self.cache.misses)
        yield c
        g = GaugeMetricFamily("analysis_compare_cache_entries", "Cached comparisons")
        g.add_metric([], len(self.cache))
        yield g


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database error: %s: %s", exc.__class__.__name__, exc)
    return JSONResponse(
        error_body(
            "database_unavailable",
            f"the database could not answer ({exc.__class__.__name__}); retry later",
        ),
        status_code=503,
    )


def create_app(settings: AnalysisSettings | None = None) -> FastAPI:
    settings = settings or AnalysisSettings()
    registry = CollectorRegistry()
    cache: TTLCache[VersionComparisonResult] = TTLCache(
        settings.analysis_compare_cache_ttl_s, settings.analysis_compare_cache_size
    )
    registry.register(_CacheCollector(cache))
    exposure_cache: ExposureCache = TTLCache(settings.analysis_exposure_cache_ttl_s, 10_000)

    def components(app: FastAPI) -> Sequence[Component]:
        app.state.database = DatabaseComponent(settings)
        app.state.gauges = VariantGauges(
            app.state.database, registry, settings.analysis_gauges_interval_s
        )
        return [app.state.database, app.state.gauges]

    app = create_service_app(
        title="abflow analysis service",
        description=DESCRIPTION,
        components=components,
        routers=routers,
        registry=registry,
        service="analysis",
    )
    app.state.settings = settings
    app.state.compare_cache = cache
    app.state.exposure_cache = exposure_cache
    app.state.database = DatabaseComponent(settings)
    for exc_type in (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        app.add_exception_handler(exc_type, _database_error)
    return app


app = create_app()
