"""Builders of assignment configs for the assignment unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from shared.events import (
    AssignmentConfig,
    ExperimentArm,
    ExperimentConfig,
    SchemaDefinition,
    VariantConfig,
)

BASE_DEFINITION = SchemaDefinition(
    workflow_steps=[{"name": "fetch"}, {"name": "score"}],
    risk_config={"threshold": 0.5},
    config={"timeout_s": 10},
)


def _uuid(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, name)


def make_variant(
    key: str,
    traffic_allocation: float = 0.0,
    *,
    status: str = "active",
    base_version: int = 2,
) -> VariantConfig:
    return VariantConfig(
        variant_id=_uuid(f"variant:{key}"),
        variant_key=key,
        variant_name=f"Variant {key}",
        base_version=base_version,
        traffic_allocation=traffic_allocation,
        status=status,
        effective_definition=SchemaDefinition(config={"variant": key}),
    )


def make_experiment(
    arm_keys: Sequence[str],
    weights: Sequence[float],
    coverage: float = 1.0,
    *,
    seed: str = "exp-seed",
    key: str = "exp-key",
) -> ExperimentConfig:
    return ExperimentConfig(
        experiment_id=_uuid(f"experiment:{key}"),
        experiment_key=key,
        seed=seed,
        coverage=coverage,
        arms=[
            ExperimentArm(
                variant_id=_uuid(f"variant:{k}"),
                variant_key=k,
                weight=w,
                is_control=i == 0,
            )
            for i, (k, w) in enumerate(zip(arm_keys, weights, strict=True))
        ],
    )


def make_config(
    variants: Sequence[VariantConfig] = (),
    experiment: ExperimentConfig | None = None,
    *,
    schema_key: str = "checkout",
    **overrides: Any,
) -> AssignmentConfig:
    return AssignmentConfig(
        schema_id=_uuid(f"schema:{schema_key}"),
        schema_key=schema_key,
        revision=overrides.pop("revision", 1),
        base_version=overrides.pop("base_version", 1),
        base_definition=overrides.pop("base_definition", BASE_DEFINITION),
        variants=list(variants),
        experiment=experiment,
        **overrides,
    )
