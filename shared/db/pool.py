"""asyncpg pool factory with JSON codecs and retry on start; a probe for health reports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    attempts: int = 30,
    backoff_s: float = 0.5,
    **kwargs: Any,
) -> asyncpg.Pool:
    """Create a pool, retrying with capped exponential backoff while the server is not up."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
            )
            return pool
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if attempt == attempts:
                raise
            log.warning(
                "database not reachable (%s); retry %d/%d in %.1fs", exc, attempt, attempts, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


class PoolProbe:
    """Tells truthfully whether the pool's server answers: a background task runs
    ``SELECT 1`` every ``interval_s`` (bounded by ``timeout_s``) on a connection of its
    own (so a pool saturated by requests is not mistaken for a lost server), and
    ``/health`` reports a lost database within seconds even while no request touches it.
    A failed probe also makes the pool drop its connections (``expire_connections``), so
    the first requests after the server is back do not trip over dead ones.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 2.0,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self.reachable = True
        self.last_error: str | None = None
        self.unreachable_since: float | None = None
        self.failures = 0

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="database-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 1.0)
            if not conn.is_closed():
                conn.terminate()

    async def check(self) -> bool:
        """One probe now; updates :attr:`reachable`."""
        try:
            async with asyncio.timeout(self._timeout_s):
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(
                        self._dsn, server_settings={"application_name": "abflow-health-probe"}
                    )
                await self._conn.fetchval("SELECT 1")
        except asyncio.CancelledError:
            raise
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            if self.reachable:
                log.warning("database unreachable: %s: %s", exc.__class__.__name__, exc)
                self.unreachable_since = time.monotonic()
            self.reachable = False
            self.failures += 1
            self.last_error = f"{exc.__class__.__name__}: {exc}"[:300]
            await self._drop_connection()
            with contextlib.suppress(Exception):
                await self._pool.expire_connections()
            return False
        if not self.reachable:
            log.info("database reachable again")
        self.reachable = True
        self.unreachable_since = None
        return True

    async def _run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval_s)

    def report(self) -> dict[str, Any]:
        """``{"database": "reachable" | "unreachable", ...}`` for a health report."""
        out: dict[str, Any] = {"database": "reachable" if self.reachable else "unreachable"}
        if not self.reachable:
            since = self.unreachable_since
            out["unreachable_for_s"] = None if since is None else round(time.monotonic() - since, 1)
            out["last_error"] = self.last_error
        return out
