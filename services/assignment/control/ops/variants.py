"""Schema variants: create, update, lifecycle, traffic allocation; and the statistics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from shared.assignment.merge_patch import effective_definition
from shared.errors import ConflictError, NotFoundError, ValidationFailed
from shared.events import SchemaDefinition

from ..lifecycle import VARIANT_ACTIONS, transition
from ..models.variants import (
    TrafficAllocationOut,
    TrafficAllocationRequest,
    VariantCreate,
    VariantOut,
    VariantPage,
    VariantUpdate,
)
from ..uow import UnitOfWork
from .common import check_version, dynamic_update

__all__ = [
    "change_variant_status",
    "create_variant",
    "get_variant",
    "list_variants",
    "set_traffic_allocation",
    "update_variant",
]

_SELECT = """
SELECT v.*, b.definition AS base_definition
  FROM schema_variants v
  LEFT JOIN workflow_schema_versions b
    ON b.schema_id = v.schema_id AND b.version_number = v.base_version
"""
_UPDATABLE = frozenset(
    {
        "base_version",
        "variant_name",
        "description",
        "config_overrides",
        "workflow_steps_override",
        "risk_config_override",
        "traffic_allocation",
    }
)
_DEFINING = frozenset(
    {"base_version", "config_overrides", "workflow_steps_override", "risk_config_override"}
)
_TRAFFIC_CONSTRAINT = "schema_variants_traffic_sum"


def _effective(base: Any, row: dict[str, Any]) -> SchemaDefinition:
    return effective_definition(
        SchemaDefinition.model_validate(base),
        config_overrides=row["config_overrides"],
        workflow_steps_override=row["workflow_steps_override"],
        risk_config_override=row["risk_config_override"],
    )


def _variant_out(row: asyncpg.Record) -> VariantOut:
    data = dict(row)
    base = data.pop("base_definition", None)
    try:
        data["effective_definition"] = None if base is None else _effective(base, data)
    except ValueError:
        data["effective_definition"] = None
    return VariantOut.model_validate(data)


def _validate_definition(base: Any, row: dict[str, Any]) -> None:
    """422 when the overrides do not yield a valid SchemaDefinition."""
    try:
        _effective(base, row)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise ValidationFailed(
            f"the overrides do not yield a valid definition: {loc}: {first.get('msg')}",
            code="invalid_overrides",
            field="config_overrides",
        ) from exc


async def _fetch(
    conn: asyncpg.Connection, variant_id: UUID, *, lock: bool = False
) -> asyncpg.Record:
    sql = f"{_SELECT} WHERE v.id = $1" + (" FOR UPDATE OF v" if lock else "")
    row = await conn.fetchrow(sql, variant_id)
    if row is None:
        raise NotFoundError(f"variant {variant_id} not found", variant_id=str(variant_id))
    return row


async def _base_definition(conn: asyncpg.Connection, schema_id: UUID, number: int) -> Any:
    definition = await conn.fetchval(
        "SELECT definition FROM workflow_schema_versions WHERE schema_id = $1 AND version_number = $2",
        schema_id,
        number,
    )
    if definition is None:
        raise ValidationFailed(
            f"base_version: schema {schema_id} has no version {number}",
            code="unknown_base_version",
            field="base_version",
        )
    return definition


async def _active_total(
    conn: asyncpg.Connection, schema_id: UUID, excluding: list[UUID]
) -> Decimal:
    total: Decimal = await conn.fetchval(
        """
        SELECT coalesce(sum(traffic_allocation), 0) FROM schema_variants
         WHERE schema_id = $1 AND status = 'active' AND NOT (id = ANY($2::uuid[]))
        """,
        schema_id,
        excluding,
    )
    return total


def _over_100(total: Decimal) -> ValidationFailed:
    return ValidationFailed(
        f"traffic_allocation: the active variants of the schema would total {total:f} percent (max 100)",
        code="traffic_allocation_exceeds_100",
        constraint=_TRAFFIC_CONSTRAINT,
        field="traffic_allocation",
        total=float(total),
    )


async def _in_live_experiment(conn: asyncpg.Connection, variant_id: UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """
            SELECT e.id, e.experiment_key, e.status FROM experiment_variants ev
              JOIN experiments e ON e.id = ev.experiment_id
             WHERE ev.variant_id = $1 AND e.status IN ('running', 'paused')
            """,
            variant_id,
        )
    )


def _in_use(experiments: list[asyncpg.Record], what: str) -> ConflictError:
    return ConflictError(
        f"cannot {what}: the variant is an arm of a running or paused experiment",
        code="variant_in_experiment",
        experiments=[
            {"id": str(r["id"]), "key": r["experiment_key"], "status": r["status"]}
            for r in experiments
        ],
    )


async def get_variant(conn: asyncpg.Connection, variant_id: UUID) -> VariantOut:
    return _variant_out(await _fetch(conn, variant_id))


async def list_variants(
    conn: asyncpg.Connection, *, schema_id: UUID | None, status: str | None, limit: int, offset: int
) -> VariantPage:
    rows = await conn.fetch(
        f"""
        {_SELECT}
         WHERE ($1::uuid IS NULL OR v.schema_id = $1) AND ($2::text IS NULL OR v.status = $2)
         ORDER BY v.created_at, v.id
         LIMIT $3 OFFSET $4
        """,
        schema_id,
        status,
        limit,
        offset,
    )
    total = await conn.fetchval(
        """
        SELECT count(*) FROM schema_variants v
         WHERE ($1::uuid IS NULL OR v.schema_id = $1) AND ($2::text IS NULL OR v.status = $2)
        """,
        schema_id,
        status,
    )
    return VariantPage(
        items=[_variant_out(r) for r in rows], total=total, limit=limit, offset=offset
    )


async def create_variant(uow: UnitOfWork, body: VariantCreate) -> VariantOut:
    schema = await uow.lock_schema(body.schema_id)
    number = body.base_version if body.base_version is not None else int(schema["current_version"])
    data = body.model_dump(mode="python")
    _validate_definition(await _base_definition(uow.conn, body.schema_id, number), data)
    row = await uow.conn.fetchrow(
        """
        INSERT INTO schema_variants (schema_id, base_version, variant_key, variant_name, description,
                                     config_overrides, workflow_steps_override, risk_config_override,
                                     traffic_allocation, created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        RETURNING id
        """,
        body.schema_id,
        number,
        body.variant_key,
        body.variant_name,
        body.description,
        data["config_overrides"],
        data["workflow_steps_override"],
        data["risk_config_override"],
        body.traffic_allocation,
        uow.ctx.actor,
    )
    after = await _fetch(uow.conn, row["id"])
    await uow.audit("variant.create", "variant", row["id"], None, _audit_row(after))
    await uow.publish(body.schema_id)
    return _variant_out(after)


def _audit_row(row: asyncpg.Record) -> dict[str, Any]:
    return {k: v for k, v in dict(row).items() if k != "base_definition"}


async def _lock(uow: UnitOfWork, variant_id: UUID, expected: int | None) -> asyncpg.Record:
    """Lock the variant's schema, then the variant; check the expected version."""
    current = await _fetch(uow.conn, variant_id)
    await uow.lock_schema(current["schema_id"])
    row = await _fetch(uow.conn, variant_id, lock=True)
    check_version(row, expected, "variant")
    return row


async def update_variant(
    uow: UnitOfWork, variant_id: UUID, body: VariantUpdate, expected: int | None
) -> VariantOut:
    before = await _lock(uow, variant_id, expected)
    if before["status"] == "archived":
        raise ConflictError(
            "an archived variant cannot change", code="variant_archived", current_status="archived"
        )
    dumped = body.model_dump(mode="python")
    changes = {k: dumped[k] for k in body.model_fields_set & _UPDATABLE}
    changes = {k: v for k, v in changes.items() if v != before[k]}
    if not changes:
        return _variant_out(before)
    if changes.keys() & _DEFINING:
        live = await _in_live_experiment(uow.conn, variant_id)
        if live:
            raise _in_use(live, "change the definition of this variant")
        merged = {**dict(before), **changes}
        base = (
            await _base_definition(uow.conn, before["schema_id"], merged["base_version"])
            if "base_version" in changes
            else before["base_definition"]
        )
        _validate_definition(base, merged)
    if "traffic_allocation" in changes and before["status"] == "active":
        total = (
            await _active_total(uow.conn, before["schema_id"], [variant_id])
            + changes["traffic_allocation"]
        )
        if total > 100:
            raise _over_100(total)
    sql, args = dynamic_update("schema_variants", changes, _UPDATABLE)
    await uow.conn.execute(sql, variant_id, *args)
    after = await _fetch(uow.conn, variant_id)
    await uow.audit("variant.update", "variant", variant_id, _audit_row(before), _audit_row(after))
    await uow.publish(before["schema_id"])
    return _variant_out(after)


async def change_variant_status(
    uow: UnitOfWork, variant_id: UUID, action: str, expected: int | None
) -> VariantOut:
    """``activate`` | ``pause`` | ``archive`` (DELETE archives: already archived is a no-op)."""
    before = await _lock(uow, variant_id, expected)
    if action == "archive" and before["status"] == "archived":
        return _variant_out(before)
    target = transition(VARIANT_ACTIONS, action, before["status"], entity="variant")
    if action == "archive":
        live = await _in_live_experiment(uow.conn, variant_id)
        if live:
            raise _in_use(live, "archive this variant")
    if target == "active":
        total = (
            await _active_total(uow.conn, before["schema_id"], [variant_id])
            + before["traffic_allocation"]
        )
        if total > 100:
            raise _over_100(total)
    await uow.conn.execute(
        "UPDATE schema_variants SET status = $2 WHERE id = $1", variant_id, target
    )
    after = await _fetch(uow.conn, variant_id)
    await uow.audit(
        f"variant.{action}", "variant", variant_id, _audit_row(before), _audit_row(after)
    )
    await uow.publish(before["schema_id"])
    return _variant_out(after)


async def set_traffic_allocation(
    uow: UnitOfWork, schema_id: UUID, body: TrafficAllocationRequest
) -> TrafficAllocationOut:
    """Set several allocations in ONE statement (the database judges the final state)."""
    await uow.lock_schema(schema_id)
    ids = [a.variant_id for a in body.allocations]
    rows = {
        r["id"]: r
        for r in await uow.conn.fetch(
            f"{_SELECT} WHERE v.id = ANY($1::uuid[]) ORDER BY v.id FOR UPDATE OF v", ids
        )
    }
    for i, item in enumerate(body.allocations):
        row = rows.get(item.variant_id)
        if row is None:
            raise NotFoundError(
                f"variant {item.variant_id} not found", field=f"allocations.{i}.variant_id"
            )
        if row["schema_id"] != schema_id:
            raise ValidationFailed(
                f"allocations.{i}.variant_id: variant {item.variant_id} belongs to another schema",
                code="variant_of_another_schema",
                field=f"allocations.{i}.variant_id",
            )
        if row["status"] == "archived":
            raise ConflictError(
                f"variant {item.variant_id} is archived",
                code="variant_archived",
                current_status="archived",
            )
        check_version(row, item.version, "variant")
    new = {a.variant_id: a.traffic_allocation for a in body.allocations}
    total = await _active_total(uow.conn, schema_id, ids) + sum(
        (new[i] for i, r in rows.items() if r["status"] == "active"), Decimal(0)
    )
    if total > 100:
        raise _over_100(total)
    changed = [i for i in ids if new[i] != rows[i]["traffic_allocation"]]
    if changed:
        await uow.conn.execute(
            """
            UPDATE schema_variants v SET traffic_allocation = x.alloc
              FROM unnest($1::uuid[], $2::numeric[]) AS x(id, alloc)
             WHERE v.id = x.id
            """,
            changed,
            [new[i] for i in changed],
        )
        for variant_id in changed:
            after = await _fetch(uow.conn, variant_id)
            await uow.audit(
                "variant.traffic_allocation",
                "variant",
                variant_id,
                _audit_row(rows[variant_id]),
                _audit_row(after),
            )
        await uow.publish(schema_id)
    variants = await uow.conn.fetch(
        f'{_SELECT} WHERE v.schema_id = $1 ORDER BY v.variant_key COLLATE "C"', schema_id
    )
    revision = await uow.conn.fetchval(
        "SELECT config_revision FROM workflow_schemas WHERE id = $1", schema_id
    )
    return TrafficAllocationOut(
        schema_id=schema_id,
        active_total=sum(
            (v["traffic_allocation"] for v in variants if v["status"] == "active"), Decimal(0)
        ),
        config_revision=revision,
        variants=[_variant_out(v) for v in variants],
    )
