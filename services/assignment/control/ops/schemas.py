"""Workflow schemas and their immutable versions: register, publish, archive, read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from shared.errors import ConflictError, NotFoundError

from ..diff import json_diff
from ..models.schemas import (
    DiffEntry,
    HistoryEntry,
    HistoryPage,
    SchemaCreate,
    SchemaDiff,
    SchemaOut,
    SchemaPage,
    SchemaUpdate,
    VersionCreate,
    VersionOut,
    VersionPage,
)
from ..uow import UnitOfWork
from .common import check_version, dynamic_update

__all__ = [
    "archive_schema",
    "create_schema",
    "diff_versions",
    "get_schema",
    "get_version",
    "list_schemas",
    "list_versions",
    "publish_version",
    "schema_history",
    "update_schema",
]

_SELECT = """
SELECT s.*, v.definition
  FROM workflow_schemas s
  LEFT JOIN workflow_schema_versions v
    ON v.schema_id = s.id AND v.version_number = s.current_version
"""
_UPDATABLE = frozenset({"name", "description", "deliverable_type"})
# bookkeeping columns left out of the history diff
_NOISE = frozenset({"version", "updated_at", "created_at", "config_revision"})


def _schema_out(row: asyncpg.Record) -> SchemaOut:
    return SchemaOut.model_validate(dict(row))


async def _fetch_schema(conn: asyncpg.Connection, schema_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(f"{_SELECT} WHERE s.id = $1", schema_id)
    if row is None:
        raise NotFoundError(f"schema {schema_id} not found", schema_id=str(schema_id))
    return row


async def get_schema(conn: asyncpg.Connection, schema_id: UUID) -> SchemaOut:
    return _schema_out(await _fetch_schema(conn, schema_id))


async def list_schemas(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    deliverable_type: str | None,
    limit: int,
    offset: int,
) -> SchemaPage:
    rows = await conn.fetch(
        f"""
        {_SELECT}
         WHERE ($1::text IS NULL OR s.status = $1)
           AND ($2::text IS NULL OR s.deliverable_type = $2)
         ORDER BY s.created_at, s.id
         LIMIT $3 OFFSET $4
        """,
        status,
        deliverable_type,
        limit,
        offset,
    )
    total = await conn.fetchval(
        """
        SELECT count(*) FROM workflow_schemas s
         WHERE ($1::text IS NULL OR s.status = $1)
           AND ($2::text IS NULL OR s.deliverable_type = $2)
        """,
        status,
        deliverable_type,
    )
    return SchemaPage(items=[_schema_out(r) for r in rows], total=total, limit=limit, offset=offset)


async def create_schema(uow: UnitOfWork, body: SchemaCreate) -> SchemaOut:
    conn = uow.conn
    row = await conn.fetchrow(
        """
        INSERT INTO workflow_schemas (key, name, description, deliverable_type, current_version, created_by)
        VALUES ($1, $2, $3, $4, 1, $5)
        RETURNING id
        """,
        body.key,
        body.name,
        body.description,
        body.deliverable_type,
        uow.ctx.actor,
    )
    schema_id: UUID = row["id"]
    await conn.execute(
        """
        INSERT INTO workflow_schema_versions (schema_id, version_number, definition, change_summary, created_by)
        VALUES ($1, 1, $2, $3, $4)
        """,
        schema_id,
        body.definition.model_dump(mode="json"),
        body.change_summary,
        uow.ctx.actor,
    )
    await uow.publish(schema_id)
    after = await _fetch_schema(conn, schema_id)
    await uow.audit("schema.create", "schema", schema_id, None, after)
    return _schema_out(after)


async def update_schema(
    uow: UnitOfWork, schema_id: UUID, body: SchemaUpdate, expected: int | None
) -> SchemaOut:
    await uow.lock_schema(schema_id, writable=False)
    before = await _fetch_schema(uow.conn, schema_id)
    check_version(before, expected, "schema")
    changes = {k: getattr(body, k) for k in body.model_fields_set & _UPDATABLE}
    if "name" in changes and changes["name"] is None:
        changes.pop("name")
    if changes:
        sql, args = dynamic_update("workflow_schemas", changes, _UPDATABLE)
        await uow.conn.execute(sql, schema_id, *args)
    after = await _fetch_schema(uow.conn, schema_id)
    if after["version"] != before["version"]:
        await uow.audit("schema.update", "schema", schema_id, before, after)
    return _schema_out(after)


async def archive_schema(uow: UnitOfWork, schema_id: UUID, expected: int | None) -> SchemaOut:
    """Archive the schema and queue a tombstone; 409 while an experiment runs or is paused."""
    await uow.lock_schema(schema_id, writable=False)
    before = await _fetch_schema(uow.conn, schema_id)
    check_version(before, expected, "schema")
    if before["status"] == "archived":
        return _schema_out(before)
    busy = await uow.conn.fetch(
        """
        SELECT id, status FROM experiments
         WHERE schema_id = $1 AND status IN ('running', 'paused') ORDER BY created_at
        """,
        schema_id,
    )
    if busy:
        raise ConflictError(
            "the schema has a running or paused experiment; complete or cancel it first",
            code="schema_in_use",
            experiments=[{"id": str(r["id"]), "status": r["status"]} for r in busy],
        )
    await uow.conn.execute(
        "UPDATE workflow_schemas SET status = 'archived' WHERE id = $1", schema_id
    )
    await uow.publish_tombstone(schema_id)
    after = await _fetch_schema(uow.conn, schema_id)
    await uow.audit("schema.archive", "schema", schema_id, before, after)
    return _schema_out(after)


def _version_out(row: asyncpg.Record, current: int | None) -> VersionOut:
    return VersionOut.model_validate({**dict(row), "is_current": row["version_number"] == current})


async def publish_version(
    uow: UnitOfWork, schema_id: UUID, body: VersionCreate, expected: int | None
) -> VersionOut:
    schema = await uow.lock_schema(schema_id)
    before = await _fetch_schema(uow.conn, schema_id)
    check_version(schema, expected, "schema")
    number = int(schema["current_version"] or 0) + 1
    row = await uow.conn.fetchrow(
        """
        INSERT INTO workflow_schema_versions (schema_id, version_number, definition, change_summary, created_by)
        VALUES ($1, $2, $3, $4, $5)
        RETURNING *
        """,
        schema_id,
        number,
        body.definition.model_dump(mode="json"),
        body.change_summary,
        uow.ctx.actor,
    )
    await uow.conn.execute(
        "UPDATE workflow_schemas SET current_version = $2 WHERE id = $1", schema_id, number
    )
    await uow.publish(schema_id)
    after = await _fetch_schema(uow.conn, schema_id)
    await uow.audit("schema.publish_version", "schema", schema_id, before, after)
    return _version_out(row, number)


async def _current_version(conn: asyncpg.Connection, schema_id: UUID) -> int | None:
    row = await conn.fetchrow(
        "SELECT current_version FROM workflow_schemas WHERE id = $1", schema_id
    )
    if row is None:
        raise NotFoundError(f"schema {schema_id} not found", schema_id=str(schema_id))
    current: int | None = row["current_version"]
    return current


async def list_versions(
    conn: asyncpg.Connection, schema_id: UUID, *, limit: int, offset: int
) -> VersionPage:
    current = await _current_version(conn, schema_id)
    rows = await conn.fetch(
        """
        SELECT * FROM workflow_schema_versions WHERE schema_id = $1
         ORDER BY version_number LIMIT $2 OFFSET $3
        """,
        schema_id,
        limit,
        offset,
    )
    total = await conn.fetchval(
        "SELECT count(*) FROM workflow_schema_versions WHERE schema_id = $1", schema_id
    )
    return VersionPage(
        items=[_version_out(r, current) for r in rows], total=total, limit=limit, offset=offset
    )


async def _fetch_version(conn: asyncpg.Connection, schema_id: UUID, number: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM workflow_schema_versions WHERE schema_id = $1 AND version_number = $2",
        schema_id,
        number,
    )
    if row is None:
        raise NotFoundError(
            f"schema {schema_id} has no version {number}", schema_id=str(schema_id), version=number
        )
    return row


async def get_version(conn: asyncpg.Connection, schema_id: UUID, number: int) -> VersionOut:
    current = await _current_version(conn, schema_id)
    return _version_out(await _fetch_version(conn, schema_id, number), current)


async def diff_versions(
    conn: asyncpg.Connection, schema_id: UUID, from_version: int | None, to_version: int | None
) -> SchemaDiff:
    """Diff of two versions' definitions; ``to`` defaults to the current version and
    ``from`` to the one before ``to``."""
    current = await _current_version(conn, schema_id)
    to_n = to_version if to_version is not None else int(current or 1)
    from_n = from_version if from_version is not None else max(1, to_n - 1)
    old = await _fetch_version(conn, schema_id, from_n)
    new = await _fetch_version(conn, schema_id, to_n)
    changes = [
        DiffEntry(op=c.op, path=c.path, old=c.old, new=c.new)
        for c in json_diff(old["definition"], new["definition"])
    ]
    return SchemaDiff(
        schema_id=schema_id,
        from_version=from_n,
        to_version=to_n,
        identical=not changes,
        added=sum(1 for c in changes if c.op == "added"),
        removed=sum(1 for c in changes if c.op == "removed"),
        changed=sum(1 for c in changes if c.op == "changed"),
        changes=changes,
    )


def _history_changes(before: Any, after: Any) -> list[DiffEntry]:
    def strip(d: Any) -> Any:
        return {k: v for k, v in d.items() if k not in _NOISE} if isinstance(d, dict) else d

    return [
        DiffEntry(op=c.op, path=c.path, old=c.old, new=c.new)
        for c in json_diff(strip(before) or {}, strip(after) or {})
    ]


async def schema_history(
    conn: asyncpg.Connection,
    schema_id: UUID,
    *,
    entity_type: str | None,
    limit: int,
    offset: int,
) -> HistoryPage:
    """The audit trail of the schema, its variants and its experiments, newest first."""
    await _current_version(conn, schema_id)
    where = """
        ($3::text IS NULL OR a.entity_type = $3) AND (
             (a.entity_type = 'schema' AND a.entity_id = $2::text)
          OR (a.entity_type = 'variant' AND a.entity_id IN
                 (SELECT id::text FROM schema_variants WHERE schema_id = $1::uuid))
          OR (a.entity_type = 'experiment' AND a.entity_id IN
                 (SELECT id::text FROM experiments WHERE schema_id = $1::uuid)))
    """
    args = (schema_id, str(schema_id), entity_type)
    rows = await conn.fetch(
        f"SELECT a.* FROM audit_log a WHERE {where} ORDER BY a.id DESC LIMIT $4 OFFSET $5",
        *args,
        limit,
        offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM audit_log a WHERE {where}", *args)
    items = [
        HistoryEntry(
            id=r["id"],
            occurred_at=r["occurred_at"],
            actor=r["actor"],
            action=r["action"],
            entity_type=r["entity_type"],
            entity_id=r["entity_id"],
            request_id=r["request_id"],
            before=r["before"],
            after=r["after"],
            changes=_history_changes(r["before"], r["after"]),
        )
        for r in rows
    ]
    return HistoryPage(items=items, total=total, limit=limit, offset=offset)
