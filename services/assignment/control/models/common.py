"""Types shared by the API models: percentages, JSON documents, pages, errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer

from ..jsonvalues import json_depth

__all__ = [
    "KEY_PATTERN",
    "MAX_JSON_DEPTH",
    "ApiModel",
    "ErrorBody",
    "JsonObject",
    "JsonObjectList",
    "Percent",
    "error_responses",
    "shallow_json",
]

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
MAX_JSON_DEPTH = 32


def shallow_json(value: Any) -> Any:
    if json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


# A percentage with at most two decimals (numeric(5,2) in PostgreSQL), a number in JSON.
Percent = Annotated[
    Decimal,
    Field(ge=0, le=100, max_digits=5, decimal_places=2),
    PlainSerializer(float, return_type=float, when_used="json"),
]
JsonObject = Annotated[dict[str, Any], AfterValidator(shallow_json)]
JsonObjectList = Annotated[
    list[dict[str, Any]], Field(max_length=1000), AfterValidator(shallow_json)
]


class ApiModel(BaseModel):
    """Request bodies reject unknown fields (a typo is a 422, not silently ignored)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a machine-readable ``error`` code and a ``message``; more
    fields depending on the error (``field``, ``constraint``, ``current_status``,
    ``current_version``, ``detail``...)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "error": "illegal_transition",
                    "message": "cannot pause a draft experiment",
                    "current_status": "draft",
                    "requested_status": "paused",
                },
                {
                    "error": "traffic_allocation_exceeds_100",
                    "message": "traffic_allocation: the active variants of a schema would total more than 100 percent",
                    "constraint": "schema_variants_traffic_sum",
                    "field": "traffic_allocation",
                },
            ]
        },
    )

    error: str
    message: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    text = {
        404: "Unknown id",
        409: "Conflict: duplicate key, stale version, illegal transition or state rule",
        412: "Precondition failed",
        422: "Malformed or out-of-range input (the field at fault is named)",
        503: "Database unavailable",
    }
    return {c: {"model": ErrorBody, "description": text.get(c, "Error")} for c in codes}
