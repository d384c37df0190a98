"""The console's way to the APIs: ``/console/api/...`` forwarded to the gateway with the
logged-in user's key.

The key lives in an HttpOnly cookie the page's JavaScript cannot read, so the browser
never calls the APIs itself: it calls ``/console/api/v1/...`` on the console's origin and
this proxy adds ``Authorization: Bearer <key>`` and sends the request on to
``CONSOLE_UPSTREAM_URL`` (the gateway). Only ``/console/api/v1/...`` is forwarded, as
GET/POST/PATCH/DELETE; a state-changing request whose ``Origin`` is another site is
refused (the SameSite=Strict cookie already keeps other sites out; this is the second
lock).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.console.session import session_of
from services.console.settings import ConsoleSettings
from shared.http import error_body

__all__ = ["Upstream", "router"]

log = logging.getLogger(__name__)

_PATH = re.compile(r"^v1/[A-Za-z0-9._~/%-]*$")
_FORWARDED_REQUEST = ("accept", "content-type", "x-actor", "cache-control", "if-match")
_FORWARDED_RESPONSE = ("content-type", "etag", "www-authenticate")

router = APIRouter(tags=["console"])


class Upstream:
    """The HTTP client to ``CONSOLE_UPSTREAM_URL`` (a component: opened at start, closed
    at stop; opened on first use when the app runs without its lifespan)."""

    name = "upstream"

    def __init__(
        self, settings: ConsoleSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self.transport = transport
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.settings.console_upstream_url,
                transport=self.transport,
                timeout=httpx.Timeout(30.0, connect=3.0),
            )
        return self._client

    async def start(self) -> None:
        self.client()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "ready": True, "url": self.settings.console_upstream_url}

    async def check_key(self, key: str) -> tuple[bool, str]:
        """Whether ``key`` may read (what every console page needs), and why not."""
        try:
            r = await self.client().get(
                "/api/v1/experiments/statuses",
                params={"limit": 1},
                headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("console login: upstream unreachable: %r", exc)
            return False, "unreachable"
        if r.status_code == 401:
            return False, "unknown"
        if r.status_code == 403:
            return False, "scope"
        if r.status_code >= 500:
            return False, "unreachable"
        return True, ""


def upstream_of(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every browser on same-origin requests
        return True
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


@router.api_route(
    "/console/api/{path:path}",
    methods=["GET", "POST", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def proxy(path: str, request: Request) -> Response:
    session = session_of(request)
    if session is None:
        return JSONResponse(
            error_body("unauthorized", "not logged in to the console", login="/console/login"),
            status_code=401,
        )
    if not _PATH.match(path) or "/../" in f"/{path}/" or "/./" in f"/{path}/":
        return JSONResponse(error_body("not_found", "not an API path"), status_code=404)
    if request.method != "GET" and not _same_origin(request):
        return JSONResponse(error_body("forbidden", "cross-site request refused"), status_code=403)
    headers = {k: v for k in _FORWARDED_REQUEST if (v := request.headers.get(k)) is not None}
    headers["Authorization"] = f"Bearer {session.key}"
    body = await request.body()
    try:
        r = (
            await upstream_of(request)
            .client()
            .request(
                request.method,
                f"/api/{path}",
                params=str(request.query_params),
                headers=headers,
                content=body or None,
            )
        )
    except httpx.HTTPError as exc:
        log.warning("console proxy: %s /api/%s: %r", request.method, path, exc)
        return JSONResponse(
            error_body("upstream_unavailable", "the platform's API cannot be reached"),
            status_code=502,
        )
    out = {k: v for k in _FORWARDED_RESPONSE if (v := r.headers.get(k)) is not None}
    return Response(r.content, status_code=r.status_code, headers=out)
