"""A structural JSON diff: which paths were added, removed or changed.

Paths are JSON Pointers (RFC 6901). Objects are compared member by member, arrays
element by element (by index; extra elements are added/removed at their index), and
any other pair of values that differ is one ``changed`` entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Change", "json_diff", "pointer"]

Op = Literal["added", "removed", "changed"]
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Change:
    op: Op
    path: str
    old: Any = None
    new: Any = None


def pointer(parts: tuple[str | int, ...]) -> str:
    """RFC 6901 pointer of a path (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def json_diff(old: Any, new: Any) -> list[Change]:
    """Every difference between two JSON values, in document order (iterative)."""
    changes: list[Change] = []
    stack: list[tuple[tuple[str | int, ...], Any, Any]] = [((), old, new)]
    while stack:
        path, a, b = stack.pop()
        if a is _MISSING:
            changes.append(Change("added", pointer(path), None, b))
        elif b is _MISSING:
            changes.append(Change("removed", pointer(path), a, None))
        elif isinstance(a, dict) and isinstance(b, dict):
            keys = list(a) + [k for k in b if k not in a]
            stack.extend(
                ((*path, k), a.get(k, _MISSING), b.get(k, _MISSING)) for k in reversed(keys)
            )
        elif isinstance(a, list) and isinstance(b, list):
            n = max(len(a), len(b))
            stack.extend(
                (
                    (*path, i),
                    a[i] if i < len(a) else _MISSING,
                    b[i] if i < len(b) else _MISSING,
                )
                for i in reversed(range(n))
            )
        elif (type(a) is not type(b) or a != b) and not (
            # 1 and 1.0 are the same JSON number; True and 1 are not the same value
            _is_number(a) and _is_number(b) and a == b
        ):
            changes.append(Change("changed", pointer(path), a, b))
    return changes


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
