"""Models of ``/api/v1/versions``: schema variants, traffic allocation, statistics."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.events import SchemaDefinition

from .common import KEY_PATTERN, ApiModel, JsonObject, JsonObjectList, Percent

__all__ = [
    "AllocationItem",
    "TrafficAllocationOut",
    "TrafficAllocationRequest",
    "VariantCreate",
    "VariantOut",
    "VariantPage",
    "VariantStatus",
    "VariantUpdate",
    "VersionStats",
]

VariantStatus = Literal["draft", "active", "paused", "archived"]
_SCHEMA_ID = "5f0c8a56-0f5e-4a53-9c3e-1a9e7f1f6a11"
_VARIANT_ID = "0b7e4e8c-3c55-4c43-bf0e-38f7e7c9a2f0"
_TS = "2025-12-22T10:00:00Z"
_RISK: dict[str, Any] = {"auto_approve_threshold": 0.2, "require_hitl_threshold": 0.75}


class VariantCreate(ApiModel):
    """A variant: a base version of the schema plus overrides (created as ``draft``).

    ``config_overrides`` is a JSON Merge Patch (RFC 7396) on the whole definition,
    ``risk_config_override`` a merge patch on ``risk_config``, and
    ``workflow_steps_override`` (when given) replaces ``workflow_steps``.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "schema_id": _SCHEMA_ID,
                    "base_version": 1,
                    "variant_key": "treatment_a",
                    "variant_name": "Stricter HITL",
                    "risk_config_override": _RISK,
                    "traffic_allocation": 50,
                }
            ]
        },
    )

    schema_id: UUID
    base_version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Default: the schema's current version."
    )
    variant_key: str = Field(pattern=KEY_PATTERN, description="Unique within the schema.")
    variant_name: str = Field(default="", max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    config_overrides: JsonObject = Field(default_factory=dict)
    workflow_steps_override: JsonObjectList | None = None
    risk_config_override: JsonObject = Field(default_factory=dict)
    traffic_allocation: Percent = Field(
        default=Decimal(0), description="Rollout share, 0-100 percent."
    )


class VariantUpdate(ApiModel):
    """Change a variant; absent fields stay as they are (``workflow_steps_override: null``
    removes the steps override). ``version`` or If-Match: optimistic concurrency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "variant_name": "Stricter HITL (0.7)",
                    "risk_config_override": {"require_hitl_threshold": 0.7},
                    "version": 1,
                }
            ]
        },
    )

    base_version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    variant_name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    config_overrides: JsonObject | None = None
    workflow_steps_override: JsonObjectList | None = None
    risk_config_override: JsonObject | None = None
    traffic_allocation: Percent | None = None
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)

    @field_validator(
        "base_version",
        "variant_name",
        "config_overrides",
        "risk_config_override",
        "traffic_allocation",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class VariantOut(BaseModel):
    """A variant with its effective definition and cached metrics."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _VARIANT_ID,
                    "schema_id": _SCHEMA_ID,
                    "base_version": 1,
                    "variant_key": "treatment_a",
                    "variant_name": "Stricter HITL",
                    "description": None,
                    "config_overrides": {},
                    "workflow_steps_override": None,
                    "risk_config_override": _RISK,
                    "traffic_allocation": 50.0,
                    "status": "draft",
                    "effective_definition": {
                        "workflow_steps": [{"name": "collect", "type": "task"}],
                        "risk_config": _RISK,
                        "config": {},
                    },
                    "total_executions": 0,
                    "successful_executions": 0,
                    "failed_executions": 0,
                    "conversion_rate": None,
                    "avg_execution_time_ms": None,
                    "p95_execution_time_ms": None,
                    "avg_risk_score": None,
                    "metrics_updated_at": None,
                    "created_by": "user123",
                    "version": 1,
                    "created_at": _TS,
                    "updated_at": _TS,
                }
            ]
        }
    )

    id: UUID
    schema_id: UUID
    base_version: int
    variant_key: str
    variant_name: str
    description: str | None
    config_overrides: dict[str, Any]
    workflow_steps_override: list[dict[str, Any]] | None
    risk_config_override: dict[str, Any]
    traffic_allocation: Percent
    status: VariantStatus
    effective_definition: SchemaDefinition | None = Field(
        description="The base version's definition with the overrides merged in."
    )
    total_executions: int
    successful_executions: int
    failed_executions: int
    conversion_rate: float | None
    avg_execution_time_ms: float | None
    p95_execution_time_ms: float | None
    avg_risk_score: float | None
    metrics_updated_at: datetime | None
    created_by: str | None
    version: int = Field(description="Row version for If-Match / optimistic concurrency.")
    created_at: datetime
    updated_at: datetime


class VariantPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 50, "offset": 0}]}
    )

    items: list[VariantOut]
    total: int
    limit: int
    offset: int


class AllocationItem(ApiModel):
    variant_id: UUID
    traffic_allocation: Percent
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Expected variant version (optional)."
    )


class TrafficAllocationRequest(ApiModel):
    """Set several variants' allocations in one transaction; judged on the final state:
    the ACTIVE variants of the schema may total at most 100 percent."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "allocations": [
                        {"variant_id": _VARIANT_ID, "traffic_allocation": 30},
                        {
                            "variant_id": "9a1d2c3b-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
                            "traffic_allocation": 70,
                        },
                    ]
                }
            ]
        },
    )

    allocations: list[AllocationItem] = Field(min_length=1, max_length=1000)

    @field_validator("allocations")
    @classmethod
    def _unique(cls, value: list[AllocationItem]) -> list[AllocationItem]:
        ids = [a.variant_id for a in value]
        if len(set(ids)) != len(ids):
            raise ValueError("a variant appears more than once")
        return value


class TrafficAllocationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema_id": _SCHEMA_ID,
                    "active_total": 100.0,
                    "config_revision": 4,
                    "variants": [],
                }
            ]
        }
    )

    schema_id: UUID
    active_total: Percent = Field(description="Sum of the ACTIVE variants' allocations.")
    config_revision: int
    variants: list[VariantOut] = Field(description="Every variant of the schema.")


class VersionStats(BaseModel):
    """Counts across the version-control data (the dashboard's stat cards)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "total_schemas": 3,
                    "active_schemas": 3,
                    "total_versions": 5,
                    "total_variants": 6,
                    "variants_by_status": {"draft": 2, "active": 3, "paused": 1, "archived": 0},
                    "total_experiments": 2,
                    "experiments_by_status": {
                        "draft": 1,
                        "running": 1,
                        "paused": 0,
                        "completed": 0,
                        "cancelled": 0,
                    },
                    "running_experiments": 1,
                }
            ]
        }
    )

    total_schemas: int
    active_schemas: int
    total_versions: int
    total_variants: int
    variants_by_status: dict[str, int]
    total_experiments: int
    experiments_by_status: dict[str, int]
    running_experiments: int
