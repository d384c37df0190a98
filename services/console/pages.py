"""The console's pages: an HTML shell per page (data comes from the APIs in the browser,
through the console's proxy ``/console/api/...``) and ``/console/config.json`` (what the
shell embeds: API base URL, links, refresh). Without a login the pages redirect to the
login form (:mod:`services.console.login`)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from string import Template
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.console.login import login_redirect
from services.console.session import session_of
from services.console.settings import ConsoleSettings

__all__ = ["PAGES", "STATIC_DIR", "browser_config", "render_page", "router"]

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE = HERE / "templates" / "page.html"
PREFIX = "/console"
STATIC_URL = f"{PREFIX}/static"

Page = Literal["experiments", "performance"]
PAGES: dict[Page, str] = {"experiments": "Experiments", "performance": "Performance dashboard"}

router = APIRouter(tags=["console"])


@cache
def _template() -> Template:
    return Template(TEMPLATE.read_text(encoding="utf-8"))


def browser_config(settings: ConsoleSettings, user: str | None = None) -> dict[str, Any]:
    """What the browser needs: where the APIs are (the console's own proxy), who acts
    (the name given at login, else ``CONSOLE_ACTOR``), the links, the refresh period."""
    return {
        "apiBaseUrl": PREFIX,
        "loginUrl": f"{PREFIX}/login",
        "actor": user or settings.console_actor,
        "refreshSeconds": settings.console_refresh_seconds,
        "links": {
            "grafana": settings.console_grafana_url,
            "prometheus": settings.console_prometheus_url,
            "docs": settings.console_docs_url,
        },
    }


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>``, no HTML comment openers)."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(page: Page, settings: ConsoleSettings, user: str | None = None) -> str:
    current = {name: 'aria-current="page"' if name == page else "" for name in PAGES}
    return _template().substitute(
        title=PAGES[page],
        page=page,
        static=STATIC_URL,
        config=_script_json(browser_config(settings, user)),
        experiments_current=current["experiments"],
        performance_current=current["performance"],
    )


def _settings(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def _user(request: Request) -> str | None:
    session = session_of(request)
    return None if session is None else session.name


def _html(page: Page, request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return login_redirect(request)
    return HTMLResponse(
        render_page(page, _settings(request), session.name),
        headers={"Cache-Control": "no-cache"},
    )


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/experiments", status_code=302)


@router.get(PREFIX, include_in_schema=False)
@router.get(f"{PREFIX}/", include_in_schema=False)
async def console_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/experiments", status_code=302)


@router.get(f"{PREFIX}/experiments", response_class=HTMLResponse, summary="Experiments page")
async def experiments_page(request: Request) -> Response:
    return _html("experiments", request)


@router.get(f"{PREFIX}/performance", response_class=HTMLResponse, summary="Performance dashboard")
async def performance_page(request: Request) -> Response:
    return _html("performance", request)


@router.get(f"{PREFIX}/config.json", summary="The configuration the pages run with")
async def config(request: Request) -> JSONResponse:
    return JSONResponse(browser_config(_settings(request), _user(request)))
