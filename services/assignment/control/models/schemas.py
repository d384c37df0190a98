"""Models of ``/api/v1/schemas``: workflow schemas, versions, diffs and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.events import SchemaDefinition

from .common import KEY_PATTERN, ApiModel, shallow_json

__all__ = [
    "DiffEntry",
    "HistoryEntry",
    "HistoryPage",
    "SchemaCreate",
    "SchemaDiff",
    "SchemaOut",
    "SchemaPage",
    "SchemaUpdate",
    "VersionCreate",
    "VersionOut",
    "VersionPage",
]

Definition = Annotated[SchemaDefinition, BeforeValidator(shallow_json)]

_DEFINITION_EXAMPLE: dict[str, Any] = {
    "workflow_steps": [
        {"name": "collect", "type": "task"},
        {"name": "review", "type": "hitl"},
    ],
    "risk_config": {"auto_approve_threshold": 0.3, "require_hitl_threshold": 0.8},
    "config": {"timeout_s": 60},
}
_SCHEMA_ID = "5f0c8a56-0f5e-4a53-9c3e-1a9e7f1f6a11"
_TS = "2025-12-22T10:00:00Z"


class SchemaCreate(ApiModel):
    """Register a workflow schema; ``definition`` becomes its version 1."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "key": "foundation_design",
                    "name": "Foundation design workflow",
                    "description": "Designs foundations with a human review step.",
                    "deliverable_type": "foundation_design",
                    "definition": _DEFINITION_EXAMPLE,
                    "change_summary": "initial version",
                }
            ]
        },
    )

    key: str = Field(pattern=KEY_PATTERN, description="Unique, lowercase: a-z 0-9 _ . -")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    deliverable_type: str | None = Field(default=None, max_length=100)
    definition: Definition
    change_summary: str | None = Field(default=None, max_length=2000)


class SchemaUpdate(ApiModel):
    """Change a schema's descriptive fields (``version``/If-Match: optimistic concurrency)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Foundation design (v2 flow)", "version": 2}]},
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    deliverable_type: str | None = Field(default=None, max_length=100)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)


class SchemaOut(BaseModel):
    """A workflow schema with the definition of its current version."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _SCHEMA_ID,
                    "key": "foundation_design",
                    "name": "Foundation design workflow",
                    "description": None,
                    "deliverable_type": "foundation_design",
                    "status": "active",
                    "current_version": 1,
                    "config_revision": 1,
                    "definition": _DEFINITION_EXAMPLE,
                    "created_by": "user123",
                    "version": 1,
                    "created_at": _TS,
                    "updated_at": _TS,
                }
            ]
        }
    )

    id: UUID
    key: str
    name: str
    description: str | None
    deliverable_type: str | None
    status: Literal["active", "archived"]
    current_version: int | None
    config_revision: int = Field(description="Revision of the published assignment config.")
    definition: SchemaDefinition | None
    created_by: str | None
    version: int = Field(description="Row version for If-Match / optimistic concurrency.")
    created_at: datetime
    updated_at: datetime


class SchemaPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 50, "offset": 0}]}
    )

    items: list[SchemaOut]
    total: int
    limit: int
    offset: int


class VersionCreate(ApiModel):
    """Publish a new immutable version of a schema (it becomes the current version)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "definition": {
                        **_DEFINITION_EXAMPLE,
                        "risk_config": {
                            "auto_approve_threshold": 0.25,
                            "require_hitl_threshold": 0.8,
                        },
                    },
                    "change_summary": "lower auto-approve threshold",
                }
            ]
        },
    )

    definition: Definition
    change_summary: str | None = Field(default=None, max_length=2000)
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Expected schema version (or If-Match)."
    )


class VersionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema_id": _SCHEMA_ID,
                    "version_number": 2,
                    "definition": _DEFINITION_EXAMPLE,
                    "change_summary": "lower auto-approve threshold",
                    "created_by": "user123",
                    "created_at": _TS,
                    "is_current": True,
                }
            ]
        }
    )

    schema_id: UUID
    version_number: int
    definition: SchemaDefinition
    change_summary: str | None
    created_by: str | None
    created_at: datetime
    is_current: bool


class VersionPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"items": [], "total": 0, "limit": 50, "offset": 0}]}
    )

    items: list[VersionOut]
    total: int
    limit: int
    offset: int


class DiffEntry(BaseModel):
    op: Literal["added", "removed", "changed"]
    path: str = Field(description="JSON Pointer (RFC 6901) into the definition.")
    old: Any = None
    new: Any = None


class SchemaDiff(BaseModel):
    """Structural difference between two versions' definitions."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "schema_id": _SCHEMA_ID,
                    "from_version": 1,
                    "to_version": 2,
                    "identical": False,
                    "added": 0,
                    "removed": 0,
                    "changed": 1,
                    "changes": [
                        {
                            "op": "changed",
                            "path": "/risk_config/auto_approve_threshold",
                            "old": 0.3,
                            "new": 0.25,
                        }
                    ],
                }
            ]
        }
    )

    schema_id: UUID
    from_version: int
    to_version: int
    identical: bool
    added: int
    removed: int
    changed: int
    changes: list[DiffEntry]


class HistoryEntry(BaseModel):
    """One audit row: who changed what, when, the row before and after, and the diff."""

    id: int
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    request_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changes: list[DiffEntry] = Field(
        description="Structural diff of before -> after (bookkeeping columns left out)."
    )


class HistoryPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": 7,
                            "occurred_at": _TS,
                            "actor": "user123",
                            "action": "variant.activate",
                            "entity_type": "variant",
                            "entity_id": "0b7e4e8c-3c55-4c43-bf0e-38f7e7c9a2f0",
                            "request_id": None,
                            "before": {"status": "draft"},
                            "after": {"status": "active"},
                            "changes": [
                                {
                                    "op": "changed",
                                    "path": "/status",
                                    "old": "draft",
                                    "new": "active",
                                }
                            ],
                        }
                    ],
                    "total": 1,
                    "limit": 50,
                    "offset": 0,
                }
            ]
        }
    )

    items: list[HistoryEntry]
    total: int
    limit: int
    offset: int
