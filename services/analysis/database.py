"""The asyncpg pool as a service component (started and stopped by the app's lifespan)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from services.analysis.settings import AnalysisSettings
from shared.db.pool import PoolProbe, create_pool
from shared.errors import PlatformError

log = logging.getLogger(__name__)

__all__ = ["DatabaseComponent", "DatabaseUnavailable"]


class DatabaseUnavailable(PlatformError):
    """PostgreSQL did not answer (down, restarting, or a statement timed out): HTTP 503."""

    status_code = 503
    code = "database_unavailable"
    retriable = True


async def _keep_session(_: asyncpg.Connection) -> None:
    """Release hook: asyncpg still rolls back an open transaction; the default reset query
    (``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL``, advisory unlock) would cost one round
    trip per query, and the service never changes session state."""


class DatabaseComponent:
    """Owns the pool; ``pool`` raises :class:`DatabaseUnavailable` before start."""

    name = "database"

    def __init__(self, settings: AnalysisSettings, *, attempts: int = 30) -> None:
        self._settings = settings
        self._attempts = attempts
        self._pool: asyncpg.Pool | None = None
        self._probe: PoolProbe | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseUnavailable("the database pool is not started")
        return self._pool

    async def start(self) -> None:
        s = self._settings
        self._pool = await create_pool(
            s.database_url,
            min_size=min(s.analysis_db_pool_min, s.analysis_db_pool_max),
            max_size=s.analysis_db_pool_max,
            attempts=self._attempts,
            reset=_keep_session,
            server_settings={
                "application_name": "abflow-analysis",
                "statement_timeout": str(s.analysis_statement_timeout_ms),
                # the service's only writes are version_comparisons rows (a cache of
                # results that can be recomputed): no need to wait for the WAL flush
                "synchronous_commit": "off",
                # sums over a few thousand rows: starting parallel workers costs more
                "max_parallel_workers_per_gather": "0",
            },
        )
        self._probe = PoolProbe(self._pool, s.database_url)
        self._probe.start()

    async def stop(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            await probe.stop()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def health(self) -> dict[str, Any]:
        pool = self._pool
        if pool is None:
            return {"status": "down", "ready": False}
        # every answer of this service needs the database: without it the service is down
        probe = self._probe.report() if self._probe is not None else {"database": "reachable"}
        reachable = probe["database"] == "reachable"
        return {
            "status": "ok" if reachable else "down",
            "ready": reachable,
            **probe,
            "size": pool.get_size(),
            "idle": pool.get_idle_size(),
            "max_size": pool.get_max_size(),
        }
