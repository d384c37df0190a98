"""Models of ``/api/v1/experiments``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .common import KEY_PATTERN, ApiModel, Percent

__all__ = [
    "ArmIn",
    "ArmOut",
    "ExperimentCreate",
    "ExperimentOut",
    "ExperimentPage",
    "ExperimentStatus",
    "ExperimentUpdate",
    "Metric",
]

ExperimentStatus = Literal["draft", "running", "paused", "completed", "cancelled"]
Metric = Literal["success_rate", "execution_time", "risk_score"]
_SCHEMA_ID = "5f0c8a56-0f5e-4a53-9c3e-1a9e7f1f6a11"
_CONTROL = "2c6f1d0a-7b8e-4f3a-9d2c-5e6f7a8b9c0d"
_TREATMENT = "0b7e4e8c-3c55-4c43-bf0e-38f7e7c9a2f0"
_EXPERIMENT_ID = "8d9e0f1a-2b3c-4d5e-8f6a-7b8c9d0e1f2a"
_TS = "2025-12-22T10:00:00Z"
_INT4 = 2**31 - 1


class ArmIn(ApiModel):
    """An arm of an experiment: a variant of the experiment's schema and its share."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"variant_id": _TREATMENT, "is_control": False, "traffic_percentage": 50}]
        },
    )

    variant_id: UUID
    is_control: bool = False
    traffic_percentage: Percent


def _check_arms(arms: Sequence[ArmIn]) -> None:
    ids = [a.variant_id for a in arms]
    if len(set(ids)) != len(ids):
        raise ValueError("a variant appears more than once")
    if sum(1 for a in arms if a.is_control) > 1:
        raise ValueError("more than one control variant")


def _check_metrics(values: list[Metric] | None) -> list[Metric] | None:
    if values is not None and len(set(values)) != len(values):
        raise ValueError("duplicate metric")
    return values


class ExperimentCreate(ApiModel):
    """Create an experiment (status ``draft``). ``hash_seed`` defaults to the key;
    ``coverage`` is the share of eligible units that enter the experiment."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "experiment_key": "hitl_test_2025",
                    "experiment_name": "HITL Threshold Test",
                    "hypothesis": "Stricter HITL thresholds raise the success rate.",
                    "schema_id": _SCHEMA_ID,
                    "deliverable_type": "foundation_design",
                    "primary_metric": "success_rate",
                    "secondary_metrics": ["execution_time"],
                    "min_sample_size": 100,
                    "confidence_level": 0.95,
                    "significance_threshold": 0.05,
                    "variants": [
                        {"variant_id": _CONTROL, "is_control": True, "traffic_percentage": 50},
                        {"variant_id": _TREATMENT, "is_control": False, "traffic_percentage": 50},
                    ],
                }
            ]
        },
    )

    experiment_key: str = Field(pattern=KEY_PATTERN)
    experiment_name: str = Field(min_length=1, max_length=200)
    hypothesis: str | None = Field(default=None, max_length=5000)
    description: str | None = Field(default=None, max_length=5000)
    schema_id: UUID
    deliverable_type: str | None = Field(default=None, max_length=100)
    primary_metric: Metric = "success_rate"
    secondary_metrics: list[Metric] = Field(default_factory=list, max_length=3)
    min_sample_size: int = Field(default=100, ge=2, le=_INT4)
    confidence_level: float = Field(default=0.95, ge=0.5, lt=1)
    significance_threshold: float = Field(default=0.05, gt=0, lt=1)
    hash_seed: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: experiment_key."
    )
    coverage: float = Field(default=1.0, ge=0, le=1)
    sequential_testing: bool = False
    sequential_tuning: int = Field(default=5000, ge=1, le=_INT4)
    minimum_detectable_effect: float | None = Field(default=None, gt=0, le=1e9)
    variants: list[ArmIn] = Field(default_factory=list, max_length=50)

    @field_validator("secondary_metrics")
    @classmethod
    def _unique_metrics(cls, value: list[Metric] | None) -> list[Metric] | None:
        return _check_metrics(value)

    @field_validator("variants")
    @classmethod
    def _arms(cls, value: list[ArmIn]) -> list[ArmIn]:
        _check_arms(value)
        return value


class ExperimentUpdate(ApiModel):
    """Change an experiment. Only ``experiment_name``, ``description`` and ``hypothesis``
    may change once it left draft; ``variants`` (replaces all arms) and every other field
    only while draft. ``version`` or If-Match: optimistic concurrency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"experiment_name": "HITL Threshold Test (EU)", "version": 3},
                {
                    "coverage": 0.5,
                    "variants": [
                        {"variant_id": _CONTROL, "is_control": True, "traffic_percentage": 50},
                        {"variant_id": _TREATMENT, "traffic_percentage": 50},
                    ],
                },
            ]
        },
    )

    experiment_name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    hypothesis: str | None = Field(default=None, max_length=5000)
    deliverable_type: str | None = Field(default=None, max_length=100)
    primary_metric: Metric | None = None
    secondary_metrics: list[Metric] | None = Field(default=None, max_length=3)
    min_sample_size: int | None = Field(default=None, ge=2, le=_INT4)
    confidence_level: float | None = Field(default=None, ge=0.5, lt=1)
    significance_threshold: float | None = Field(default=None, gt=0, lt=1)
    hash_seed: str | None = Field(default=None, min_length=1, max_length=200)
    coverage: float | None = Field(default=None, ge=0, le=1)
    sequential_testing: bool | None = None
    sequential_tuning: int | None = Field(default=None, ge=1, le=_INT4)
    minimum_detectable_effect: float | None = Field(default=None, gt=0, le=1e9)
    variants: list[ArmIn] | None = Field(default=None, max_length=50)
    version: int | None = Field(default=None, ge=1, le=_INT4)

    @field_validator("secondary_metrics")
    @classmethod
    def _unique_metrics(cls, value: list[Metric] | None) -> list[Metric] | None:
        return _check_metrics(value)

    @field_validator("variants")
    @classmethod
    def _arms(cls, value: list[ArmIn] | None) -> list[ArmIn] | None:
        if value is not None:
            _check_arms(value)
        return value

    @field_validator(
        "experiment_name",
        "primary_metric",
        "secondary_metrics",
        "min_sample_size",
        "confidence_level",
        "significance_threshold",
        "hash_seed",
        "coverage",
        "sequential_testing",
        "sequential_tuning",
        "variants",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class ArmOut(BaseModel):
    id: UUID
    variant_id: UUID
    variant_key: str
    variant_name: str
    variant_status: str
    position: int
    is_control: bool
    traffic_percentage: Percent
    weight: float = Field(
        description="traffic_percentage / 100, as published to the assignment service."
    )


class ExperimentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _EXPERIMENT_ID,
                    "experiment_key": "hitl_test_2025",
                    "experiment_name": "HITL Threshold Test",
                    "description": None,
                    "hypothesis": None,
                    "schema_id": _SCHEMA_ID,
                    "deliverable_type": "foundation_design",
                    "status": "running",
                    "primary_metric": "success_rate",
                    "secondary_metrics": [],
                    "min_sample_size": 100,
                    "confidence_level": 0.95,
                    "significance_threshold": 0.05,
                    "hash_seed": "hitl_test_2025",
                    "coverage": 1.0,
                    "sequential_testing": False,
                    "sequential_tuning": 5000,
                    "minimum_detectable_effect": None,
                    "started_at": _TS,
                    "paused_at": None,
                    "ended_at": None,
                    "winning_variant_id": None,
                    "p_value": None,
                    "effect_size": None,
                    "results": None,
                    "variants": [
                        {
                            "id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                            "variant_id": _CONTROL,
                            "variant_key": "control",
                            "variant_name": "Control",
                            "variant_status": "draft",
                            "position": 0,
                            "is_control": True,
                            "traffic_percentage": 50.0,
                            "weight": 0.5,
                        }
                    ],
                    "created_by": "user123",
                    "version": 3,
                    "created_at": _TS,
                    "updated_at": _TS,
                }
            ]
        }
    )

    id: UUID
    experiment_key: str
    experiment_name: str
    description: str | None
    hypothesis: str | None
    schema_id: UUID
    deliverable_type: str | None
    status: ExperimentStatus
    primary_metric: Metric
    secondary_metrics: list[str]
    min_sample_size: int
    confidence_level: float
    significance_threshold: float
    hash_seed: str
    coverage: float
    sequential_testing: bool
    sequential_tuning: int
    minimum_detectable_effect: float | None
    started_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    winning_variant_id: UUID | None
    p_value: float | None
    effect_size: float | None
    results: dict[str, Any] | None
    variants: list[ArmOut]
    created_by: str | None
    version: int = Field(description="Row version for If-Match; arm changes bump it too.")
    created_at: datetime
    updated_at: datetime


class ExperimentPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 50, "offset": 0}]}
    )

    items: list[ExperimentOut]
    total: int
    limit: int
    offset: int
