"""Settings of the analysis service (environment variables, see ``docs/analysis.md``)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import BaseServiceSettings


class AnalysisSettings(BaseServiceSettings):
    """Every field reads the environment variable of the same name, upper-cased."""

    analysis_db_pool_min: int = Field(default=2, ge=1, description="Connections opened at start.")
    analysis_db_pool_max: int = Field(default=10, ge=1, description="Upper bound of the pool.")
    analysis_statement_timeout_ms: int = Field(
        default=5000,
        ge=100,
        description="PostgreSQL statement_timeout of the service's connections (a query over it is a 503).",
    )
    analysis_compare_cache_ttl_s: float = Field(
        default=300.0,
        ge=0,
        description=(
            "Lifetime of a cached POST /compare result; 0 disables the cache. The key also holds "
            "every summed input and the newest updated_at, so changed data never hits."
        ),
    )
    analysis_compare_cache_size: int = Field(
        default=1024, ge=1, description="Cached comparisons kept (least recently used evicted)."
    )
    analysis_exposure_cache_ttl_s: float = Field(
        default=15.0,
        ge=0,
        description=(
            "Lifetime of cached exposed-unit counts per experiment (SRM input; counting is "
            "O(units)); 0 disables. Cache-Control: no-cache on a request forces a fresh count."
        ),
    )
    analysis_gauges_interval_s: float = Field(
        default=15.0,
        ge=0,
        description=(
            "Refresh period of the per-variant Prometheus gauges of running and paused "
            "experiments; 0 disables them."
        ),
    )
    analysis_max_period_days: int = Field(
        default=366, ge=1, le=3660, description="Longest period any endpoint accepts."
    )
    analysis_statuses_limit_max: int = Field(
        default=500, ge=1, description="Largest page of GET /experiments/statuses."
    )
