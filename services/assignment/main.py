"""Composition root of the assignment service.

Two components share one process:

- ``control`` (:mod:`services.assignment.control`): the control API over PostgreSQL,
  the audit log, and the outbox relay that publishes each schema's assignment config
  to the compacted config topic;
- ``serving`` (:mod:`services.assignment.serving`): the in-memory snapshot fed by that
  topic, ``POST /api/v1/assign`` and the exposure events.

Run: ``uvicorn services.assignment.main:app``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.assignment.control.component import ControlPlane
from services.assignment.control.routes import routers as control_routers
from services.assignment.control.settings import ControlSettings
from services.assignment.serving.component import ServingComponent
from services.assignment.serving.routes import router as serving_router
from services.assignment.serving.settings import ServingSettings
from shared.http import Component, create_service_app

DESCRIPTION = (
    "Control API for workflow schemas, versions, variants, traffic allocation and "
    "experiment lifecycle (PostgreSQL is the source of truth, every change audited and "
    "published to Kafka), and deterministic variant assignment from an in-memory snapshot."
)


def create_app(
    control_settings: ControlSettings | None = None,
    serving_settings: ServingSettings | None = None,
) -> FastAPI:
    registry = CollectorRegistry()

    def components(app: FastAPI) -> Sequence[Component]:
        app.state.control = ControlPlane(control_settings or ControlSettings(), registry)
        app.state.serving = ServingComponent(serving_settings or ServingSettings(), registry)
        return [app.state.control, app.state.serving]

    app = create_service_app(
        title="abflow assignment service",
        description=DESCRIPTION,
        components=components,
        routers=[serving_router, *control_routers],  # the hot path is matched first
        registry=registry,
        service="assignment",
    )
    return app


app = create_app()
