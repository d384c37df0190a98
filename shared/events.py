"""Event contracts carried over Kafka.

Every model is frozen and carries an explicit ``event_version`` (or
``config_version``) so that consumers can reject what they do not understand.
The JSON Schemas in ``schemas/events/`` are generated from these models
(``python -m shared.jsonschemas``); a test fails when they drift.

The wire events (:class:`ExecutionEvent`, :class:`StepResult`, :class:`ExposureEvent`,
:class:`DeadLetter`) are **strict**: a JSON-native type must arrive as itself (``"1"`` is
not an integer, ``1`` and ``"true"`` are not booleans, ``2.0`` is not an integer; an
integer is a valid float), exactly as their published JSON Schemas say. Ids are UUID
strings (or ``UUID`` objects in Python) and times ISO 8601 date-time strings with an
offset (or aware ``datetime`` objects); numbers are refused for both.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "AssignmentConfig",
    "DeadLetter",
    "ExecutionEvent",
    "ExperimentArm",
    "ExperimentConfig",
    "ExposureEvent",
    "SchemaDefinition",
    "StepResult",
    "VariantConfig",
]

EXECUTION_EVENT_VERSION: Literal[1] = 1
EXPOSURE_EVENT_VERSION: Literal[1] = 1
CONFIG_VERSION: Literal[1] = 1
DEAD_LETTER_VERSION: Literal[1] = 1
MAX_EMBEDDED_BYTES = 256 * 1024
"""Largest key or value embedded in a dead letter (base64 grows it by a third; a producer's
default ``max_request_size`` is 1 MiB)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Wire(BaseModel):
    """A strict event read from Kafka (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def _datetime_input(value: Any) -> Any:
    """Only an aware ``datetime`` or an ISO 8601 string goes on to pydantic's parser (which
    would also take a number, or a string of digits, as Unix time)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        if _ISO_DATETIME.match(value):
            return value
        raise PydanticCustomError(
            "datetime_parsing", "Input should be an ISO 8601 date-time, e.g. 2024-01-31T12:00:00Z"
        )
    raise PydanticCustomError("datetime_type", "Input should be an ISO 8601 date-time string")


def _version_input(value: Any) -> Any:
    if isinstance(value, bool):  # True == 1 for Literal[1]
        raise PydanticCustomError("literal_error", "Input should be 1")
    return value


WireVersion = Annotated[Literal[1], BeforeValidator(_version_input)]
"""An ``event_version`` / ``dead_letter_version``: the integer 1 (not ``true``)."""
WireUUID = Annotated[UUID, Field(strict=False)]
"""A UUID as its string (or a ``UUID`` object)."""
WireDatetime = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_datetime_input)]
"""An aware date-time as an ISO 8601 string with an offset (or an aware ``datetime``)."""


class StepResult(_Wire):
    """Outcome of one workflow step within an execution."""

    name: str = Field(min_length=1, max_length=200)
    success: bool
    duration_ms: float = Field(ge=0, le=1e10, allow_inf_nan=False)


class ExecutionEvent(_Wire):
    """One finished workflow execution, emitted by an orchestrator.

    Keyed by ``execution_id`` on the executions topic; a retried emission of the same
    execution id is counted once by the aggregator.
    """

    event_version: WireVersion = EXECUTION_EVENT_VERSION
    execution_id: str = Field(min_length=1, max_length=200)
    schema_id: WireUUID
    schema_version: int = Field(ge=1)
    variant_id: WireUUID | None = None
    variant_key: str | None = Field(default=None, max_length=100)
    experiment_id: WireUUID | None = None
    unit_id: str | None = Field(default=None, max_length=200)
    success: bool
    duration_ms: float = Field(ge=0, le=1e10, allow_inf_nan=False)
    risk_score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    steps: list[StepResult] = Field(default_factory=list, max_length=200)
    started_at: WireDatetime
    completed_at: WireDatetime
    assignment_reason: str | None = Field(default=None, max_length=32)

    @model_validator(mode="after")
    def _completed_after_start(self) -> ExecutionEvent:
        if self.completed_at < self.started_at:
            raise ValueError("completed_at is before started_at")
        return self


class ExposureEvent(_Wire):
    """A unit was assigned into an experiment (keyed by unit id)."""

    event_version: WireVersion = EXPOSURE_EVENT_VERSION
    experiment_id: WireUUID
    experiment_key: str
    variant_id: WireUUID
    variant_key: str
    schema_id: WireUUID
    unit_id: str = Field(min_length=1, max_length=200)
    bucket: float = Field(ge=0, lt=1)
    exposed_at: WireDatetime
    replica: str | None = None


class SchemaDefinition(_Frozen):
    """The content of one schema version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workflow_steps: list[dict[str, Any]] = Field(default_factory=list)
    risk_config: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)


class VariantConfig(_Frozen):
    """An active variant of a schema as the assignment service needs it."""

    variant_id: UUID
    variant_key: str
    variant_name: str = ""
    base_version: int = Field(ge=1)
    traffic_allocation: float = Field(ge=0, le=100)
    status: str = "active"
    effective_definition: SchemaDefinition


class ExperimentArm(_Frozen):
    variant_id: UUID
    variant_key: str
    weight: float = Field(ge=0, le=1, description="Share of the experiment, sums to 1.")
    is_control: bool = False


class ExperimentConfig(_Frozen):
    """The running experiment of a schema."""

    experiment_id: UUID
    experiment_key: str
    seed: str
    coverage: float = Field(ge=0, le=1)
    hash_version: Literal[2] = 2
    arms: list[ExperimentArm] = Field(min_length=2)
    status: Literal["running"] = "running"

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> ExperimentConfig:
        total = sum(a.weight for a in self.arms)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"arm weights sum to {total}, not 1")
        return self


class AssignmentConfig(_Frozen):
    """The complete assignment configuration of one schema (compacted config topic).

    ``revision`` only grows; a consumer ignores a value whose revision is not newer
    than the one it holds.
    """

    config_version: Literal[1] = CONFIG_VERSION
    schema_id: UUID
    schema_key: str
    revision: int = Field(ge=1)
    base_version: int = Field(ge=1)
    base_definition: SchemaDefinition
    variants: list[VariantConfig] = Field(default_factory=list)
    experiment: ExperimentConfig | None = None
    published_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))


class DeadLetter(_Wire):
    """A record that could not be processed, with its original bytes and the reason."""

    dead_letter_version: WireVersion = DEAD_LETTER_VERSION
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str | None
    reason: str
    error_code: str
    service: str
    failed_at: WireDatetime

    @staticmethod
    def encode(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode("ascii")

    @classmethod
    def for_record(
        cls,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
        error_code: str,
        service: str,
        failed_at: datetime | None = None,
    ) -> DeadLetter:
        """The dead letter of one record. Keys and values over ``MAX_EMBEDDED_BYTES`` are
        not embedded (the letter must fit in one Kafka message): the reason then gives
        their size and SHA-256."""
        notes: list[str] = []

        def embed(raw: bytes | None, what: str) -> str | None:
            if raw is None or len(raw) <= MAX_EMBEDDED_BYTES:
                return cls.encode(raw)
            notes.append(
                f"{what} of {len(raw)} bytes not embedded (sha256 {hashlib.sha256(raw).hexdigest()})"
            )
            return None

        return cls(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key_b64=embed(key, "key"),
            value_b64=embed(value, "value"),
            reason="; ".join([reason[:2000], *notes]),
            error_code=error_code,
            service=service,
            failed_at=failed_at or datetime.now(UTC),
        )
