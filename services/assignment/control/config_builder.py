"""The complete assignment configuration of one schema, as published to Kafka.

Rules (the serving side, :mod:`shared.assignment.decision`, relies on them):

- ``base_version`` / ``base_definition``: the schema's current version;
- ``variants``: the schema's ACTIVE variants, plus the arms of the running experiment
  whatever their status (an arm runs its own definition even when its variant is not
  in the rollout; the decision module only rolls out ``status == "active"``), in
  creation order (``created_at``, then ``id``: a new variant's rollout range comes after
  the others', so it takes its share from the base version and no unit moves between
  existing variants; the SQL reference orders the same way), each
  with its ``effective_definition`` precomputed (JSON Merge Patch of the overrides on
  the definition of the variant's ``base_version``);
- ``experiment``: the RUNNING experiment (none while paused), with ``seed`` =
  ``hash_seed``, ``coverage``, and its arms in ``experiment_variants.position`` order,
  ``weight = float(traffic_percentage) / 100`` (see :func:`arm_weight`): the weights of
  arms summing to 100 percent sum to 1 within 1e-9, and the SQL reference
  ``select_variant_for_execution`` computes the same doubles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from shared.assignment.merge_patch import effective_definition
from shared.events import (
    AssignmentConfig,
    ExperimentArm,
    ExperimentConfig,
    SchemaDefinition,
    VariantConfig,
)

__all__ = ["arm_weight", "assemble_config", "load_config"]


def arm_weight(traffic_percentage: Decimal | int | float | str) -> float:
    """An arm's share of its experiment: ``float(traffic_percentage) / 100``.

    The decimal is converted to the nearest float (exactly rounded, as PostgreSQL's
    ``numeric::float8``) and divided by 100 in IEEE double precision: bit-identical to
    the SQL reference ``select_variant_for_execution`` (``traffic_percentage::float8 / 100``)
    so both place a unit on the same side of every boundary. Each weight is within one ulp
    of the exact quotient, so arms summing to 100 percent sum to 1 within 1e-9.
    """
    return float(Decimal(str(traffic_percentage))) / 100


def assemble_config(
    *,
    schema: Mapping[str, Any],
    definitions: Mapping[int, Mapping[str, Any]],
    variants: Sequence[Mapping[str, Any]],
    experiment: Mapping[str, Any] | None,
    arms: Sequence[Mapping[str, Any]],
    revision: int,
    published_at: datetime | None = None,
) -> AssignmentConfig:
    """Build the config from plain rows (pure; see the module docstring for the rules).

    ``schema``: id, key, current_version; ``definitions``: version number -> definition;
    ``variants``: schema_variants rows with ``created_at`` (any order); ``experiment``: the running
    experiment's row or None; ``arms``: its experiment_variants rows with
    ``variant_key`` (any order; sorted by ``position`` here).
    """
    base_version = int(schema["current_version"])
    base = SchemaDefinition.model_validate(definitions[base_version])
    variant_configs = [
        VariantConfig(
            variant_id=v["id"],
            variant_key=v["variant_key"],
            variant_name=v["variant_name"] or "",
            base_version=v["base_version"],
            traffic_allocation=float(v["traffic_allocation"]),
            status=v["status"],
            effective_definition=effective_definition(
                SchemaDefinition.model_validate(definitions[int(v["base_version"])]),
                config_overrides=v["config_overrides"],
                workflow_steps_override=v["workflow_steps_override"],
                risk_config_override=v["risk_config_override"],
            ),
        )
        for v in sorted(variants, key=lambda row: (row["created_at"], row["id"]))
    ]
    experiment_config = None
    if experiment is not None:
        experiment_config = ExperimentConfig(
            experiment_id=experiment["id"],
            experiment_key=experiment["experiment_key"],
            seed=experiment["hash_seed"],
            coverage=float(experiment["coverage"]),
            arms=[
                ExperimentArm(
                    variant_id=a["variant_id"],
                    variant_key=a["variant_key"],
                    weight=arm_weight(a["traffic_percentage"]),
                    is_control=a["is_control"],
                )
                for a in sorted(arms, key=lambda row: int(row["position"]))
            ],
        )
    extra: dict[str, Any] = {} if published_at is None else {"published_at": published_at}
    return AssignmentConfig(
        schema_id=schema["id"],
        schema_key=schema["key"],
        revision=revision,
        base_version=base_version,
        base_definition=base,
        variants=variant_configs,
        experiment=experiment_config,
        **extra,
    )


async def load_config(
    conn: asyncpg.Connection, schema_id: UUID, revision: int
) -> AssignmentConfig | None:
    """Read what :func:`assemble_config` needs; None when the schema is archived or absent."""
    schema = await conn.fetchrow(
        "SELECT id, key, current_version, status FROM workflow_schemas WHERE id = $1", schema_id
    )
    if schema is None or schema["status"] != "active" or schema["current_version"] is None:
        return None
    experiment = await conn.fetchrow(
        """
        SELECT id, experiment_key, hash_seed, coverage FROM experiments
         WHERE schema_id = $1 AND status = 'running'
        """,
        schema_id,
    )
    arms: list[asyncpg.Record] = []
    if experiment is not None:
        arms = await conn.fetch(
            """
            SELECT ev.variant_id, ev.position, ev.is_control, ev.traffic_percentage, sv.variant_key
              FROM experiment_variants ev
              JOIN schema_variants sv ON sv.id = ev.variant_id
             WHERE ev.experiment_id = $1
             ORDER BY ev.position
            """,
            experiment["id"],
        )
    variants = await conn.fetch(
        """
        SELECT id, variant_key, variant_name, base_version, traffic_allocation, status,
               config_overrides, workflow_steps_override, risk_config_override, created_at
          FROM schema_variants
         WHERE schema_id = $1 AND (status = 'active' OR id = ANY($2::uuid[]))
         ORDER BY created_at, id
        """,
        schema_id,
        [a["variant_id"] for a in arms],
    )
    wanted = {int(schema["current_version"])} | {int(v["base_version"]) for v in variants}
    rows = await conn.fetch(
        """
        SELECT version_number, definition FROM workflow_schema_versions
         WHERE schema_id = $1 AND version_number = ANY($2::int[])
        """,
        schema_id,
        sorted(wanted),
    )
    definitions = {int(r["version_number"]): r["definition"] for r in rows}
    return assemble_config(
        schema=schema,
        definitions=definitions,
        variants=variants,
        experiment=experiment,
        arms=arms,
        revision=revision,
    )
