"""Conversion of result objects to JSON-safe structures (no NaN/Infinity, enums as strings)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from enum import Enum
from typing import Any


def to_jsonable(obj: object) -> Any:
    """Recursively convert dataclasses, mappings, sequences, enums and floats.

    Non-finite floats become ``None`` so ``json.dumps(..., allow_nan=False)`` always works.
    """
    if obj is None or (isinstance(obj, bool | int | str) and not isinstance(obj, Enum)):
        return obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, numbers.Integral):  # numpy integers
        return int(obj)
    try:  # numpy scalars and other number-likes
        return to_jsonable(float(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return str(obj)


class JsonResult:
    """Mixin giving frozen result dataclasses a JSON-safe ``to_dict()``."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (floats finite or None, enums as their string values)."""
        out = to_jsonable(self)
        assert isinstance(out, dict)
        return out
