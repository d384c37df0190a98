"""asyncpg pool factory with JSON codecs and retry on start."""

from __future__ import annotations

import asyncio
import json
import logging
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
