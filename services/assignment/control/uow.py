"""Units of work: one transaction per request, with audit, outbox and error mapping.

:func:`run_in_transaction` runs ``work(uow)`` in a READ COMMITTED transaction on a
pooled connection. A deadlock or serialization failure runs the whole unit again (a
few times, with jitter); any other database error becomes the 4xx/503 of
:func:`~.pgerrors.translate`, so no database error reaches the client as a 500.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from shared.errors import ConflictError, NotFoundError, PlatformError
from shared.events import AssignmentConfig

from .audit import RequestContext, record_audit
from .outbox import queue_config, queue_tombstone
from .pgerrors import is_retryable, translate

__all__ = ["DB_ERRORS", "UnitOfWork", "run_in_transaction", "run_read"]

T = TypeVar("T")

DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


class UnitOfWork:
    """The connection of one transaction plus the bookkeeping every mutation needs."""

    def __init__(self, conn: asyncpg.Connection, ctx: RequestContext) -> None:
        self.conn = conn
        self.ctx = ctx
        self.configs: list[AssignmentConfig] = []

    async def lock_schema(self, schema_id: UUID, *, writable: bool = True) -> asyncpg.Record:
        """Lock the schema row (serialises all writers of one schema); 404 when unknown,
        409 when archived and ``writable``."""
        row = await self.conn.fetchrow(
            "SELECT * FROM workflow_schemas WHERE id = $1 FOR NO KEY UPDATE", schema_id
        )
        if row is None:
            raise NotFoundError(f"schema {schema_id} not found", field="schema_id")
        if writable and row["status"] != "active":
            raise ConflictError(
                f"schema {schema_id} is archived",
                code="schema_archived",
                current_status=row["status"],
            )
        return row

    async def audit(
        self,
        action: str,
        entity_type: str,
        entity_id: object,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        await record_audit(
            self.conn,
            self.ctx,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=before,
            after=after,
        )

    async def publish(self, schema_id: UUID) -> None:
        """Queue the schema's assignment config in the outbox when it changed."""
        config = await queue_config(self.conn, schema_id)
        if config is not None:
            self.configs.append(config)

    async def publish_tombstone(self, schema_id: UUID) -> None:
        await queue_tombstone(self.conn, schema_id)


async def run_in_transaction(
    pool: asyncpg.Pool,
    ctx: RequestContext,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    retries: int = 5,
    acquire_timeout_s: float = 30.0,
) -> T:
    attempt = 0
    while True:
        try:
            async with pool.acquire(timeout=acquire_timeout_s) as conn, conn.transaction():
                return await work(UnitOfWork(conn, ctx))
        except PlatformError:
            raise
        except DB_ERRORS as exc:
            if is_retryable(exc) and attempt < retries:
                attempt += 1
                await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)
                continue
            raise translate(exc) from exc


async def run_read(
    pool: asyncpg.Pool,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    acquire_timeout_s: float = 30.0,
) -> T:
    """A read on a pooled connection, with the same error mapping."""
    try:
        async with pool.acquire(timeout=acquire_timeout_s) as conn:
            return await work(conn)
    except PlatformError:
        raise
    except DB_ERRORS as exc:
        raise translate(exc) from exc
