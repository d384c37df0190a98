"""Composition root of the console.

Run: ``uvicorn services.console.main:app --port 18004``. No components: the console
holds no connection; it serves the page shells, the static assets under
``/console/static`` and the shared ``/health`` and ``/metrics``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.pages import STATIC_DIR, STATIC_URL, router
from services.console.settings import ConsoleSettings
from shared.http import create_service_app

__all__ = ["app", "create_app"]

DESCRIPTION = (
    "Web console of the platform: the Experiments page and the Performance dashboard. "
    "The pages read every number from the public APIs in the browser."
)


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or ConsoleSettings()
    app = create_service_app(
        title="abflow console",
        description=DESCRIPTION,
        routers=[router],
        service="console",
    )
    app.state.settings = settings
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    return app


app = create_app()
