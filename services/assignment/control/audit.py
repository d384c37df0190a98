"""The audit trail: one ``audit_log`` row per mutation, in the mutation's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from .jsonvalues import to_json_value

__all__ = ["RequestContext", "record_audit"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks (``actor``, from the configured header) and the request's id."""

    actor: str = "anonymous"
    request_id: str | None = None


async def record_audit(
    conn: asyncpg.Connection,
    ctx: RequestContext,
    *,
    action: str,
    entity_type: str,
    entity_id: object,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """Append the audit row; ``before``/``after`` are whole rows (None on create/delete)."""
    await conn.execute(
        """
        INSERT INTO audit_log (actor, action, entity_type, entity_id, before, after, request_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        ctx.actor,
        action,
        entity_type,
        str(entity_id),
        None if before is None else to_json_value(dict(before)),
        None if after is None else to_json_value(dict(after)),
        ctx.request_id,
    )
