"""Values the client hands to the orchestrator: assignments, fallbacks and counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

__all__ = ["AssignedConfig", "Assignment", "ClientStats", "SchemaFallback"]


class AssignedConfig(BaseModel):
    """The effective definition to run: the base version's, with the variant's
    overrides merged in (RFC 7396) by the assignment service."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    workflow_steps: list[dict[str, Any]] = Field(default_factory=list)
    risk_config: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)


class Assignment(BaseModel):
    """Which version of a schema to run for one unit, and why.

    Fields are those of ``POST /api/v1/assign``; ``variant_key``/``variant_id`` are None
    for the base version; ``config`` is the answer's ``effective_config`` (``config`` is
    accepted too), ``schema_key`` and ``revision`` (of the schema's assignment config) are
    None when the service does not send them. ``reason`` is ``experiment``, ``rollout``, ``default`` or
    ``random`` from the service, or ``fallback`` when the client answered itself because
    the service could not be reached (then ``fallback`` is True, there is no variant and
    no experiment, and ``config`` is the configured or remembered base definition).
    ``cached`` is True when the answer came from the client's local cache.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_id: UUID
    schema_key: str | None = None
    revision: int | None = None
    schema_version: int = Field(ge=1)
    variant_id: UUID | None = None
    variant_key: str | None = None
    experiment_id: UUID | None = None
    experiment_key: str | None = None
    in_experiment: bool = False
    bucket: float | None = None
    reason: str
    config: AssignedConfig = Field(
        default_factory=AssignedConfig,
        validation_alias=AliasChoices("effective_config", "config"),
    )
    unit_id: str | None = None
    fallback: bool = False
    cached: bool = False

    @property
    def is_base(self) -> bool:
        """True when the base version runs (no variant)."""
        return self.variant_id is None and self.variant_key is None

    @property
    def arm(self) -> str:
        """The variant key, or ``"base"`` for the base version (handy as a label)."""
        return self.variant_key or "base"


class SchemaFallback(BaseModel):
    """What :meth:`~shared.client.AbflowClient.assign` answers for a schema when the
    assignment service cannot be reached: its base version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_id: UUID
    schema_version: int = Field(ge=1)
    definition: AssignedConfig = Field(default_factory=AssignedConfig)

    def assignment(self, unit_id: str | None) -> Assignment:
        """The fallback answer for ``unit_id``."""
        return Assignment(
            schema_id=self.schema_id,
            schema_version=self.schema_version,
            reason="fallback",
            config=self.definition,
            unit_id=unit_id,
            fallback=True,
        )


@dataclass
class ClientStats:
    """Counters of one client, for logs and tests (not thread-safe; one event loop)."""

    assign_requests: int = 0
    """HTTP requests sent to the assignment service (retries included)."""
    assign_retries: int = 0
    cache_hits: int = 0
    fallbacks: int = 0
    """Answers served from a fallback because the service was unreachable."""
    emitted: int = 0
    emit_failures: int = 0
