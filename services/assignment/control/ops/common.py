"""Helpers shared by the operations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import ConflictError

__all__ = ["check_version", "dynamic_update"]


def check_version(row: Mapping[str, Any], expected: int | None, entity: str) -> None:
    """409 ``stale_version`` when the caller's expected version is not the row's."""
    if expected is not None and expected != row["version"]:
        raise ConflictError(
            f"{entity} {row['id']} is at version {row['version']}, not {expected}",
            code="stale_version",
            current_version=row["version"],
            expected_version=expected,
        )


def dynamic_update(
    table: str, changes: Mapping[str, Any], allowed: frozenset[str]
) -> tuple[str, list[Any]]:
    """``UPDATE table SET a = $2, b = $3 WHERE id = $1 RETURNING *`` for whitelisted
    columns; the caller passes the id as the first argument."""
    cols = [c for c in changes if c in allowed]
    if len(cols) != len(changes):
        raise ValueError(f"columns not allowed: {sorted(set(changes) - set(cols))}")
    assignments = ", ".join(f"{c} = ${i}" for i, c in enumerate(cols, start=2))
    return (
        f"UPDATE {table} SET {assignments} WHERE id = $1 RETURNING *",
        [changes[c] for c in cols],
    )
