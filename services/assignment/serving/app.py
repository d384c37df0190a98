"""A serving-only assignment app: the hot path without the control plane.

The composition root (:mod:`services.assignment.main`) serves both halves; this app
serves only ``/api/v1/assign*`` and ``/api/v1/sdk/payload`` from the config topic, with
no PostgreSQL, for replicas that scale the hot path out on their own (and for the
benchmark). Run: ``uvicorn --factory services.assignment.serving.app:create_app``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from shared.http import Component, create_service_app

from .component import ServingComponent
from .routes import router
from .settings import ServingSettings

__all__ = ["create_app"]


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    registry = CollectorRegistry()

    def components(app: FastAPI) -> Sequence[Component]:
        app.state.serving = ServingComponent(settings or ServingSettings(), registry)
        return [app.state.serving]

    return create_service_app(
        title="abflow assignment serving",
        description="Deterministic variant assignment from the in-memory config snapshot.",
        components=components,
        routers=[router],
        registry=registry,
        service="assignment",
    )
