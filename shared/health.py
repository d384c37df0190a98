"""Health reports of a service's components (``/health``), without web dependencies so
that the Faust worker can use them too."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["overall_status"]


def overall_status(reports: Iterable[Mapping[str, Any]]) -> str:
    """The worst ``status`` of some component reports: ``down`` > ``degraded`` > ``ok``."""
    statuses = {r.get("status", "ok") for r in reports}
    return "down" if "down" in statuses else "degraded" if "degraded" in statuses else "ok"
