"""Composition root of the console.

Run: ``uvicorn services.console.main:app --port 18004``. One component: the HTTP client
to the gateway (``CONSOLE_UPSTREAM_URL``) through which the pages' API calls go with
the logged-in user's key. It serves the login form, the page shells, the proxy
``/console/api/...``, the static assets under ``/console/static`` and the shared
``/health`` and ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console.login import router as login_router
from services.console.pages import STATIC_DIR, STATIC_URL, router
from services.console.session import SessionCodec
from services.console.settings import ConsoleSettings
from services.console.upstream import Upstream
from services.console.upstream import router as proxy_router
from shared.http import Component, create_service_app

__all__ = ["app", "create_app"]

DESCRIPTION = (
    "Web console of the platform: the Experiments page and the Performance dashboard. "
    "The pages read every number from the public APIs in the browser."
)


def create_app(
    settings: ConsoleSettings | None = None,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """``upstream_transport`` replaces the network to the gateway (tests)."""
    settings = settings or ConsoleSettings()
    upstream = Upstream(settings, upstream_transport)

    def components(_: FastAPI) -> Sequence[Component]:
        return [upstream]

    app = create_service_app(
        title="abflow console",
        description=DESCRIPTION,
        components=components,
        routers=[login_router, router, proxy_router],
        service="console",
    )
    app.state.settings = settings
    app.state.upstream = upstream
    app.state.sessions = SessionCodec(settings.console_session_secret)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
    return app


app = create_app()
