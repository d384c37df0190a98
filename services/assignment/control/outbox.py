"""The write side of the transactional outbox.

Called inside the transaction of a mutation, after the change: it rebuilds the schema's
:class:`~shared.events.AssignmentConfig`, and when its content differs from the last
one queued for the schema, bumps ``workflow_schemas.config_revision`` and inserts a
``config_outbox`` row with the full config. The change and its outbox row commit (or
roll back) together. Writers of one schema serialise on the schema row (every unit of
work locks it first), so per schema outbox ids, revisions and commit order agree.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.events import AssignmentConfig

from .config_builder import load_config

__all__ = ["config_content", "queue_config", "queue_tombstone"]

_VOLATILE = ("revision", "published_at")


def config_content(payload: dict[str, Any]) -> dict[str, Any]:
    """A config's JSON without the fields that change on every publication."""
    return {k: v for k, v in payload.items() if k not in _VOLATILE}


async def _next_revision(conn: asyncpg.Connection, schema_id: UUID) -> tuple[int, str] | None:
    row = await conn.fetchrow(
        "SELECT config_revision, status FROM workflow_schemas WHERE id = $1 FOR NO KEY UPDATE",
        schema_id,
    )
    if row is None:
        return None
    return int(row["config_revision"]) + 1, str(row["status"])


async def queue_config(conn: asyncpg.Connection, schema_id: UUID) -> AssignmentConfig | None:
    """Queue the schema's new config when it changed; return it (None: nothing queued)."""
    nxt = await _next_revision(conn, schema_id)
    if nxt is None or nxt[1] != "active":
        return None
    revision = nxt[0]
    config = await load_config(conn, schema_id, revision)
    if config is None:
        return None
    payload = config.model_dump(mode="json")
    last = await conn.fetchrow(
        """
        SELECT event_type, payload FROM config_outbox
         WHERE schema_id = $1 ORDER BY revision DESC LIMIT 1
        """,
        schema_id,
    )
    if (
        last is not None
        and last["event_type"] == "config"
        and config_content(last["payload"]) == config_content(payload)
    ):
        return None
    await conn.execute(
        "UPDATE workflow_schemas SET config_revision = $2 WHERE id = $1", schema_id, revision
    )
    await conn.execute(
        """
        INSERT INTO config_outbox (schema_id, revision, event_type, payload)
        VALUES ($1, $2, 'config', $3)
        """,
        schema_id,
        revision,
        payload,
    )
    return config


async def queue_tombstone(conn: asyncpg.Connection, schema_id: UUID) -> int | None:
    """Queue a tombstone (null value: the schema is gone for the assignment replicas)."""
    nxt = await _next_revision(conn, schema_id)
    if nxt is None:
        return None
    revision = nxt[0]
    await conn.execute(
        "UPDATE workflow_schemas SET config_revision = $2 WHERE id = $1", schema_id, revision
    )
    await conn.execute(
        """
        INSERT INTO config_outbox (schema_id, revision, event_type, payload)
        VALUES ($1, $2, 'tombstone', NULL)
        """,
        schema_id,
        revision,
    )
    return revision
