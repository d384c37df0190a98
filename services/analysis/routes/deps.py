"""Dependencies of the routes (``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from services.analysis.cache import TTLCache
from services.analysis.comparisons import VersionComparisonResult
from services.analysis.experiments import ExposureCache
from services.analysis.settings import AnalysisSettings


def _db(request: Request) -> Any:
    return request.app.state.database.pool


def _settings(request: Request) -> AnalysisSettings:
    settings: AnalysisSettings = request.app.state.settings
    return settings


def _compare_cache(request: Request) -> TTLCache[VersionComparisonResult]:
    cache: TTLCache[VersionComparisonResult] = request.app.state.compare_cache
    return cache


def _exposure_cache(request: Request) -> ExposureCache | None:
    """The exposure-count cache, or None when the request says ``Cache-Control: no-cache``."""
    if "no-cache" in request.headers.get("cache-control", "").lower():
        return None
    cache: ExposureCache = request.app.state.exposure_cache
    return cache


DbDep = Annotated[Any, Depends(_db)]
"""The asyncpg pool (503 ``database_unavailable`` before it is started)."""
SettingsDep = Annotated[AnalysisSettings, Depends(_settings)]
CompareCacheDep = Annotated[TTLCache[VersionComparisonResult], Depends(_compare_cache)]
ExposureCacheDep = Annotated[ExposureCache | None, Depends(_exposure_cache)]


class ErrorBody(BaseModel):
    """Every error answer: a machine-readable ``error`` code and a ``message``, plus
    details depending on the error (``field``, ``detail``...)."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "Unknown schema, version, variant, comparison or experiment.",
    },
    422: {
        "model": ErrorBody,
        "description": "Malformed id, body or parameter (the field at fault is named).",
    },
    503: {
        "model": ErrorBody,
        "description": "`database_unavailable`: PostgreSQL cannot answer (retry).",
    },
}
"""The error statuses of every route (documented on the routers)."""


def json_response(model: BaseModel) -> Response:
    """Serialise a result model directly (hot routes: skips FastAPI's re-validation of the
    returned object against ``response_model``, which still documents the route).
    Non-finite floats cannot occur (``Finite`` fields) and would be written as null."""
    return Response(content=model.model_dump_json(), media_type="application/json")
