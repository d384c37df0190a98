"""The HTTP edge every FastAPI service shares.

:func:`create_service_app` builds an app from *components* (things with a lifecycle:
pools, consumers, relays) and routers, and adds what every service must have:

- ``GET /health``: each component's report; HTTP 200 while the service can answer
  (``ok`` or ``degraded``), 503 when a component is ``down``;
- ``GET /health/ready``: 200 once every component reports ready, else 503;
- ``GET /metrics``: Prometheus exposition (request counts and latency by route);
- errors as JSON: :class:`~shared.errors.PlatformError` by its status code, request
  validation as 422 with the field at fault, anything unexpected as a 500 that names
  the error class (and is logged) so that no handler leaks a stack trace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import PlatformError

log = logging.getLogger(__name__)

__all__ = ["Component", "MetricsMiddleware", "create_service_app", "error_body"]


@runtime_checkable
class Component(Protocol):
    """Something with a lifecycle that a service owns."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]:
        """``{"status": "ok" | "degraded" | "down", "ready": bool, ...details}``."""
        ...


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": code, "message": message, **details}


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency by method, route and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry, service: str) -> None:
        self.app = app
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.service = service
        # label children by (method, route, status): one dict lookup per request
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            key = (scope.get("method", "GET"), path, status)
            children = self._children.get(key)
            if children is None:
                children = (
                    self.requests.labels(self.service, key[0], path, str(status)),
                    self.latency.labels(self.service, key[0], path),
                )
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - start)


def create_service_app(
    *,
    title: str,
    description: str,
    version: str = "0.1.0",
    components: Callable[[FastAPI], Sequence[Component]] | None = None,
    routers: Sequence[APIRouter] = (),
    registry: CollectorRegistry | None = None,
    service: str,
    on_started: Callable[[FastAPI], Awaitable[None]] | None = None,
) -> FastAPI:
    """Build a FastAPI app whose lifespan starts ``components(app)`` in order and stops
    them in reverse. The registry (a fresh one by default) is ``app.state.registry``."""
    registry = registry or CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[Component] = []
        app.state.components = started
        try:
            for comp in components(app) if components else ():
                await comp.start()
                started.append(comp)
            if on_started is not None:
                await on_started(app)
            yield
        finally:
            for comp in reversed(started):
                try:
                    await comp.stop()
                except Exception:  # stop the others whatever happens
                    log.exception("stopping %s failed", comp.name)

    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.registry = registry
    app.state.components = []
    app.add_middleware(MetricsMiddleware, registry=registry, service=service)

    @app.exception_handler(PlatformError)
    async def platform_error(_: Request, exc: PlatformError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        field = ".".join(str(p) for p in first["loc"][1:]) or "body"
        return JSONResponse(
            error_body("validation_failed", f"{field}: {first['msg']}", detail=errors),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body("internal_error", f"unexpected {exc.__class__.__name__}"), status_code=500
        )

    @app.get("/health", tags=["operations"], summary="Health of the service and its components")
    async def health() -> JSONResponse:
        reports = {c.name: c.health() for c in app.state.components}
        statuses = {r.get("status", "ok") for r in reports.values()}
        status = "down" if "down" in statuses else "degraded" if "degraded" in statuses else "ok"
        return JSONResponse(
            {"status": status, "service": service, "components": reports},
            status_code=503 if status == "down" else 200,
        )

    @app.get("/health/ready", tags=["operations"], summary="Ready to serve traffic")
    async def ready() -> JSONResponse:
        reports = {c.name: c.health() for c in app.state.components}
        ok = bool(app.state.components) and all(r.get("ready", True) for r in reports.values())
        if components is None:
            ok = True
        return JSONResponse({"ready": ok, "components": reports}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
