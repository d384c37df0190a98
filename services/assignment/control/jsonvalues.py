"""Database rows as JSON values (for the audit trail and the API)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

__all__ = ["decimal_to_float", "json_depth", "to_json_value"]


def decimal_to_float(value: Decimal) -> float:
    """The float nearest to a decimal (``float(Decimal)`` rounds correctly)."""
    return float(value)


def to_json_value(value: Any) -> Any:
    """A JSON-compatible copy: UUID -> str, Decimal -> float, datetime -> ISO 8601."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return decimal_to_float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    return str(value)


def json_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, counting stops once ``limit`` is exceeded."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((c, depth + 1) for c in children)
    return deepest
