"""Routers of the control API: ``/api/v1/schemas``, ``/api/v1/versions``, ``/api/v1/experiments``."""

from __future__ import annotations

from fastapi import APIRouter

from .experiments import router as experiments_router
from .schemas import router as schemas_router
from .versions import router as versions_router

__all__ = ["routers"]

routers: list[APIRouter] = [schemas_router, versions_router, experiments_router]
