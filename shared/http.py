"""The HTTP edge every FastAPI service shares.

:func:`create_service_app` builds an app from *components* (things with a lifecycle:
pools, consumers, relays) and routers, and adds what every service must have:

- ``GET /health``: each component's report; HTTP 200 while the service can answer
  (``ok`` or ``degraded``), 503 when a component is ``down``;
- ``GET /health/ready``: 200 once every component reports ready, else 503;
- ``GET /metrics``: Prometheus exposition (request counts and latency by route);
- errors as JSON: :class:`~shared.errors.PlatformError` by its status code, request
  validation as 422 with the field at fault (a body that cannot be decoded too),
  anything unexpected as a 500 that names the error class (and is logged) so that no
  handler leaks a stack trace;
- access control (:mod:`shared.auth`): every ``/api/`` request is authenticated by its
  ``Authorization: Bearer <key>`` against ``API_KEYS`` (401 ``unauthorized``); the
  routers declare the scope they need (403 ``forbidden``); the OpenAPI document shows
  the bearer scheme and each operation's scope;
- a request body limit (``MAX_BODY_BYTES``, default 1 MiB): 413 ``payload_too_large``
  from the ``Content-Length`` alone, or as soon as a chunked body passes the limit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import ApiKeyMiddleware, AuthSettings, KeyRing, document_scopes
from shared.errors import PlatformError
from shared.health import overall_status
from shared.settings import HttpEdgeSettings

log = logging.getLogger(__name__)

__all__ = [
    "BodyLimitMiddleware",
    "Component",
    "MetricsMiddleware",
    "create_service_app",
    "error_body",
]


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


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Pure ASGI middleware: request bodies larger than ``max_bytes`` answer 413
    ``payload_too_large``. A ``Content-Length`` over the limit is refused before the
    body is read; a body without one (chunked) is counted as it arrives and refused as
    soon as it passes the limit (the rest is never read, whatever the app answers)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            error_body(
                "payload_too_large",
                f"request body larger than {self.max_bytes} bytes",
                max_bytes=self.max_bytes,
            )
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await self._reject(send)
                    return
                break
        size = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal size, exceeded
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to the interrupted body: replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await self._reject(send)


async def _undecodable_body(request: Request, exc: Exception) -> Response:
    """FastAPI answers a body it cannot decode (invalid UTF-8, nesting too deep for
    ``json.loads``...) with a bare 400 ``{"detail": ...}`` raised from the decoding error;
    like any other malformed JSON body it is a 422 ``validation_failed``."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        detail = [{"loc": ["body"], "msg": "body is not valid JSON text", "type": "json_invalid"}]
        return JSONResponse(
            error_body("validation_failed", "body: not valid JSON text", detail=detail),
            status_code=422,
        )
    return await http_exception_handler(request, exc)


def _document_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Every operation that may carry a body (POST, PUT, PATCH, or one with a documented
    request body) documents the edge's 413 (in the service's ``ErrorBody`` component
    when it has one)."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.get("components", {}).get("schemas", {})
        body_schema: dict[str, Any] = (
            {"$ref": "#/components/schemas/ErrorBody"}
            if "ErrorBody" in components
            else {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            }
        )
        for item in schema.get("paths", {}).values():
            for method, op in item.items():
                if isinstance(op, dict) and (
                    "requestBody" in op or method in ("post", "put", "patch")
                ):
                    op.setdefault("responses", {}).setdefault(
                        "413",
                        {
                            "description": f"`payload_too_large`: body over {max_bytes} bytes "
                            "(MAX_BODY_BYTES).",
                            "content": {"application/json": {"schema": body_schema}},
                        },
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


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
    api_keys: KeyRing | None = None,
    max_body_bytes: int | None = None,
) -> FastAPI:
    """Build a FastAPI app whose lifespan starts ``components(app)`` in order and stops
    them in reverse. The registry (a fresh one by default) is ``app.state.registry``;
    the API keys (``API_KEYS`` by default) are ``app.state.api_keys``."""
    registry = registry or CollectorRegistry()
    keys = api_keys if api_keys is not None else AuthSettings().keyring()
    body_limit = max_body_bytes or HttpEdgeSettings().max_body_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started: list[Component] = []
        app.state.components = started
        if not app.state.api_keys:
            log.warning(
                "%s: no API key configured (API_KEYS is empty): every /api/ route answers "
                "401; see docs/security.md",
                service,
            )
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
    app.state.api_keys = keys
    # the last added is the outermost: metrics -> API keys -> body limit -> routes
    app.add_middleware(BodyLimitMiddleware, max_bytes=body_limit)
    app.add_middleware(ApiKeyMiddleware, prefix="/api/")
    app.add_middleware(MetricsMiddleware, registry=registry, service=service)
    app.add_exception_handler(HTTPException, _undecodable_body)

    @app.exception_handler(PlatformError)
    async def platform_error(_: Request, exc: PlatformError) -> JSONResponse:
        headers: dict[str, str] | None = getattr(exc, "headers", None)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers)

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

    health_doc: dict[int | str, dict[str, Any]] = {
        200: {"description": "The service can answer: every component `ok` or `degraded`."},
        503: {
            "description": "A component is `down` (same body, `status: down`).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    }
    ready_doc: dict[int | str, dict[str, Any]] = {
        200: {"description": "Every component is ready."},
        503: {
            "description": "Not ready yet, or a component lost readiness (same body).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    }

    @app.get(
        "/health",
        tags=["operations"],
        summary="Health of the service and its components",
        responses=health_doc,
    )
    async def health() -> JSONResponse:
        reports = {c.name: c.health() for c in app.state.components}
        status = overall_status(reports.values())
        return JSONResponse(
            {"status": status, "service": service, "components": reports},
            status_code=503 if status == "down" else 200,
        )

    @app.get(
        "/health/ready", tags=["operations"], summary="Ready to serve traffic", responses=ready_doc
    )
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
    document_scopes(app)
    _document_body_limit(app, body_limit)
    return app
