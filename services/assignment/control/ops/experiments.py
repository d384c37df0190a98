"""Experiments: create, update, arms, lifecycle (start/pause/resume/complete/cancel)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from shared.errors import ConflictError, NotFoundError, ValidationFailed

from ..config_builder import arm_weight
from ..lifecycle import DESCRIPTIVE_FIELDS, EXPERIMENT_ACTIONS, start_problems, transition
from ..models.experiments import (
    ArmIn,
    ArmOut,
    ExperimentCreate,
    ExperimentOut,
    ExperimentPage,
    ExperimentUpdate,
)
from ..uow import UnitOfWork
from ..winner import determine_winner
from .common import check_version, dynamic_update

__all__ = [
    "add_arm",
    "change_experiment_status",
    "create_experiment",
    "get_experiment",
    "list_experiments",
    "remove_arm",
    "update_experiment",
]

_ARMS = """
SELECT ev.id, ev.experiment_id, ev.variant_id, ev.position, ev.is_control, ev.traffic_percentage,
       sv.variant_key, sv.variant_name, sv.status AS variant_status, sv.schema_id AS variant_schema_id
  FROM experiment_variants ev
  JOIN schema_variants sv ON sv.id = ev.variant_id
"""
_UPDATABLE = frozenset(
    {
        "experiment_name",
        "description",
        "hypothesis",
        "deliverable_type",
        "primary_metric",
        "secondary_metrics",
        "min_sample_size",
        "confidence_level",
        "significance_threshold",
        "hash_seed",
        "coverage",
        "sequential_testing",
        "sequential_tuning",
        "minimum_detectable_effect",
    }
)


def _same(stored: Any, new: Any) -> bool:
    if isinstance(stored, Decimal) and isinstance(new, int | float):
        return float(stored) == float(new)
    if isinstance(stored, list | tuple) and isinstance(new, list | tuple):
        return list(stored) == list(new)
    return bool(stored == new)


def _arm_out(row: asyncpg.Record) -> ArmOut:
    return ArmOut(
        id=row["id"],
        variant_id=row["variant_id"],
        variant_key=row["variant_key"],
        variant_name=row["variant_name"],
        variant_status=row["variant_status"],
        position=row["position"],
        is_control=row["is_control"],
        traffic_percentage=row["traffic_percentage"],
        weight=arm_weight(row["traffic_percentage"]),
    )


def _experiment_out(row: asyncpg.Record, arms: Sequence[asyncpg.Record]) -> ExperimentOut:
    data = {k: v for k, v in dict(row).items() if k != "arms_revision"}
    data["variants"] = [_arm_out(a) for a in sorted(arms, key=lambda a: a["position"])]
    return ExperimentOut.model_validate(data)


async def _arms(conn: asyncpg.Connection, experiment_id: UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(f"{_ARMS} WHERE ev.experiment_id = $1 ORDER BY ev.position", experiment_id)
    )


async def _fetch(
    conn: asyncpg.Connection, experiment_id: UUID, *, lock: bool = False
) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT * FROM experiments WHERE id = $1" + (" FOR UPDATE" if lock else ""), experiment_id
    )
    if row is None:
        raise NotFoundError(
            f"experiment {experiment_id} not found", experiment_id=str(experiment_id)
        )
    return row


async def _snapshot(
    conn: asyncpg.Connection, experiment_id: UUID
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    return await _fetch(conn, experiment_id), await _arms(conn, experiment_id)


def _audit_row(row: asyncpg.Record, arms: Sequence[asyncpg.Record]) -> dict[str, Any]:
    return {
        **dict(row),
        "variants": [
            {
                k: a[k]
                for k in (
                    "variant_id",
                    "variant_key",
                    "position",
                    "is_control",
                    "traffic_percentage",
                )
            }
            for a in arms
        ],
    }


async def get_experiment(conn: asyncpg.Connection, experiment_id: UUID) -> ExperimentOut:
    return _experiment_out(*await _snapshot(conn, experiment_id))


async def list_experiments(
    conn: asyncpg.Connection, *, status: str | None, schema_id: UUID | None, limit: int, offset: int
) -> ExperimentPage:
    where = "($1::text IS NULL OR status = $1) AND ($2::uuid IS NULL OR schema_id = $2)"
    rows = await conn.fetch(
        f"SELECT * FROM experiments WHERE {where} ORDER BY created_at DESC, id LIMIT $3 OFFSET $4",
        status,
        schema_id,
        limit,
        offset,
    )
    total = await conn.fetchval(
        f"SELECT count(*) FROM experiments WHERE {where}", status, schema_id
    )
    arms = await conn.fetch(
        f"{_ARMS} WHERE ev.experiment_id = ANY($1::uuid[]) ORDER BY ev.position",
        [r["id"] for r in rows],
    )
    by_experiment: dict[UUID, list[asyncpg.Record]] = {}
    for a in arms:
        by_experiment.setdefault(a["experiment_id"], []).append(a)
    return ExperimentPage(
        items=[_experiment_out(r, by_experiment.get(r["id"], [])) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


async def _insert_arms(
    uow: UnitOfWork, experiment_id: UUID, schema_id: UUID, arms: Sequence[ArmIn], field: str
) -> None:
    if not arms:
        return
    found = {
        r["id"]: r
        for r in await uow.conn.fetch(
            "SELECT id, schema_id, status FROM schema_variants WHERE id = ANY($1::uuid[])",
            [a.variant_id for a in arms],
        )
    }
    for i, arm in enumerate(arms):
        where = f"{field}.{i}.variant_id" if field else "variant_id"
        row = found.get(arm.variant_id)
        if row is None:
            raise NotFoundError(f"variant {arm.variant_id} not found", field=where)
        if row["schema_id"] != schema_id:
            raise ValidationFailed(
                f"{where}: variant {arm.variant_id} belongs to another schema than the experiment",
                code="variant_of_another_schema",
                field=where,
            )
        if row["status"] == "archived":
            raise ConflictError(
                f"variant {arm.variant_id} is archived", code="variant_archived", field=where
            )
    await uow.conn.executemany(
        """
        INSERT INTO experiment_variants (experiment_id, variant_id, position, is_control, traffic_percentage)
        VALUES ($1, $2, NULL, $3, $4)
        """,
        [(experiment_id, a.variant_id, a.is_control, a.traffic_percentage) for a in arms],
    )


async def create_experiment(uow: UnitOfWork, body: ExperimentCreate) -> ExperimentOut:
    await uow.lock_schema(body.schema_id)
    row = await uow.conn.fetchrow(
        """
        INSERT INTO experiments (experiment_key, experiment_name, hypothesis, description, schema_id,
                                 deliverable_type, primary_metric, secondary_metrics, min_sample_size,
                                 confidence_level, significance_threshold, hash_seed, coverage,
                                 sequential_testing, sequential_tuning, minimum_detectable_effect,
                                 created_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
        RETURNING id
        """,
        body.experiment_key,
        body.experiment_name,
        body.hypothesis,
        body.description,
        body.schema_id,
        body.deliverable_type,
        body.primary_metric,
        list(body.secondary_metrics),
        body.min_sample_size,
        body.confidence_level,
        body.significance_threshold,
        body.hash_seed or body.experiment_key,
        body.coverage,
        body.sequential_testing,
        body.sequential_tuning,
        body.minimum_detectable_effect,
        uow.ctx.actor,
    )
    experiment_id: UUID = row["id"]
    await _insert_arms(uow, experiment_id, body.schema_id, body.variants, "variants")
    after, arms = await _snapshot(uow.conn, experiment_id)
    await uow.audit("experiment.create", "experiment", experiment_id, None, _audit_row(after, arms))
    await uow.publish(body.schema_id)
    return _experiment_out(after, arms)


async def _lock(
    uow: UnitOfWork, experiment_id: UUID, expected: int | None, *, writable: bool
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """Lock the experiment's schema, then the experiment; check the expected version."""
    current = await _fetch(uow.conn, experiment_id)
    await uow.lock_schema(current["schema_id"], writable=writable)
    row = await _fetch(uow.conn, experiment_id, lock=True)
    check_version(row, expected, "experiment")
    return row, await _arms(uow.conn, experiment_id)


def _require_draft(row: asyncpg.Record, what: str) -> None:
    if row["status"] != "draft":
        raise ConflictError(
            f"{what} only while the experiment is draft; it is {row['status']}",
            code="experiment_locked",
            current_status=row["status"],
        )


async def update_experiment(
    uow: UnitOfWork, experiment_id: UUID, body: ExperimentUpdate, expected: int | None
) -> ExperimentOut:
    before, before_arms = await _lock(uow, experiment_id, expected, writable=False)
    changes = {
        k: getattr(body, k)
        for k in body.model_fields_set & _UPDATABLE
        if not _same(before[k], getattr(body, k))
    }
    locked = sorted(set(changes) - DESCRIPTIVE_FIELDS) + (
        ["variants"] if body.variants is not None else []
    )
    if locked and before["status"] != "draft":
        raise ConflictError(
            f"a {before['status']} experiment may change only its name, description and hypothesis",
            code="experiment_locked",
            current_status=before["status"],
            fields=locked,
        )
    if changes:
        sql, args = dynamic_update("experiments", changes, _UPDATABLE)
        await uow.conn.execute(sql, experiment_id, *args)
    if body.variants is not None:
        await uow.conn.execute(
            "DELETE FROM experiment_variants WHERE experiment_id = $1", experiment_id
        )
        await _insert_arms(uow, experiment_id, before["schema_id"], body.variants, "variants")
    after, arms = await _snapshot(uow.conn, experiment_id)
    if after["version"] != before["version"]:
        await uow.audit(
            "experiment.update",
            "experiment",
            experiment_id,
            _audit_row(before, before_arms),
            _audit_row(after, arms),
        )
        await uow.publish(before["schema_id"])
    return _experiment_out(after, arms)


async def change_experiment_status(
    uow: UnitOfWork, experiment_id: UUID, action: str, expected: int | None
) -> ExperimentOut:
    before, arms = await _lock(uow, experiment_id, expected, writable=action in ("start", "resume"))
    target = transition(EXPERIMENT_ACTIONS, action, before["status"], entity="experiment")
    extra: dict[str, Any] = {}
    if target == "running":
        problems = start_problems(before["schema_id"], arms)
        if problems:
            raise ValidationFailed(
                f"cannot {action} the experiment: " + "; ".join(problems),
                code="start_preconditions_failed",
                current_status=before["status"],
                problems=problems,
            )
        other = await uow.conn.fetchrow(
            "SELECT id, experiment_key FROM experiments WHERE schema_id = $1 AND status = 'running' AND id <> $2",
            before["schema_id"],
            experiment_id,
        )
        if other is not None:
            raise ConflictError(
                f"experiment {other['experiment_key']} is already running on this schema",
                code="experiment_already_running",
                current_status=before["status"],
                running_experiment_id=str(other["id"]),
            )
    if target == "completed":
        verdict = await determine_winner(uow.conn, experiment_id)
        if verdict is not None:
            extra = {
                "winning_variant_id": verdict.winning_variant_id,
                "p_value": verdict.p_value,
                "effect_size": verdict.effect_size,
                "results": verdict.results,
            }
    sql, args = dynamic_update(
        "experiments",
        {"status": target, **extra},
        frozenset({"status", "winning_variant_id", "p_value", "effect_size", "results"}),
    )
    await uow.conn.execute(sql, experiment_id, *args)
    after, after_arms = await _snapshot(uow.conn, experiment_id)
    await uow.audit(
        f"experiment.{action}",
        "experiment",
        experiment_id,
        _audit_row(before, arms),
        _audit_row(after, after_arms),
    )
    await uow.publish(before["schema_id"])
    return _experiment_out(after, after_arms)


async def add_arm(
    uow: UnitOfWork, experiment_id: UUID, arm: ArmIn, expected: int | None
) -> ExperimentOut:
    before, arms = await _lock(uow, experiment_id, expected, writable=True)
    _require_draft(before, "variants can be added")
    if any(a["variant_id"] == arm.variant_id for a in arms):
        raise ConflictError(
            f"variant {arm.variant_id} is already an arm of the experiment",
            code="duplicate_arm",
            field="variant_id",
        )
    if arm.is_control and any(a["is_control"] for a in arms):
        raise ConflictError(
            "the experiment already has a control variant",
            code="control_already_set",
            field="is_control",
        )
    await _insert_arms(uow, experiment_id, before["schema_id"], [arm], "")
    after, after_arms = await _snapshot(uow.conn, experiment_id)
    await uow.audit(
        "experiment.add_variant",
        "experiment",
        experiment_id,
        _audit_row(before, arms),
        _audit_row(after, after_arms),
    )
    await uow.publish(before["schema_id"])
    return _experiment_out(after, after_arms)


async def remove_arm(
    uow: UnitOfWork, experiment_id: UUID, variant_id: UUID, expected: int | None
) -> ExperimentOut:
    before, arms = await _lock(uow, experiment_id, expected, writable=False)
    if not any(a["variant_id"] == variant_id for a in arms):
        raise NotFoundError(
            f"variant {variant_id} is not an arm of experiment {experiment_id}",
            variant_id=str(variant_id),
        )
    _require_draft(before, "variants can be removed")
    await uow.conn.execute(
        "DELETE FROM experiment_variants WHERE experiment_id = $1 AND variant_id = $2",
        experiment_id,
        variant_id,
    )
    after, after_arms = await _snapshot(uow.conn, experiment_id)
    await uow.audit(
        "experiment.remove_variant",
        "experiment",
        experiment_id,
        _audit_row(before, arms),
        _audit_row(after, after_arms),
    )
    await uow.publish(before["schema_id"])
    return _experiment_out(after, after_arms)
