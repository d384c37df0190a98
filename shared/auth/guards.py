"""Authentication and scope checks at the HTTP edge.

Two layers, both reading the key ring in ``app.state.api_keys``:

- :class:`ApiKeyMiddleware` (pure ASGI) authenticates every request under ``/api/``
  before routing, body parsing or validation: no key, a malformed header or an unknown
  key answers 401 ``unauthorized`` with ``WWW-Authenticate: Bearer``. An empty key ring
  accepts nothing (fail closed). Everything else (``/health``, ``/metrics``, ``/docs``,
  ``/openapi.json``, the console's pages) stays open. The principal is left in the ASGI
  scope for the route.
- :class:`ScopeGuard` (a FastAPI dependency, declared on the routers) checks that the
  principal's scope grants the route's scope, else 403 ``forbidden``. Being a
  ``HTTPBearer`` security dependency, it also puts the bearer scheme and the
  ``security`` requirement in the OpenAPI document; :func:`document_scopes` adds the
  scope each operation needs (``x-required-scope`` and a line of its description).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope

from shared.errors import PlatformError

from .keys import KeyRing, Scope

__all__ = [
    "AUTH_RESPONSES",
    "PRINCIPAL_KEY",
    "ApiKeyMiddleware",
    "Forbidden",
    "Principal",
    "ScopeGuard",
    "Unauthorized",
    "auth_responses",
    "authenticate",
    "document_scopes",
    "principal_of",
    "require",
    "require_by_method",
    "route_guard",
    "scope_denied",
]

PRINCIPAL_KEY: Final = "abflow.principal"
"""Where the middleware leaves the :class:`Principal` in the ASGI scope."""
SCHEME_NAME: Final = "bearerAuth"
_CHALLENGE: Final = 'Bearer realm="abflow"'
_READ_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who holds the presented key (``API_KEYS`` entry's principal) and its scope."""

    name: str
    scope: Scope

    def allows(self, required: Scope) -> bool:
        return self.scope.allows(required)


class Unauthorized(PlatformError):
    """No key, a malformed ``Authorization`` header, or an unknown key."""

    status_code = 401
    code = "unauthorized"
    headers: dict[str, str] = {"WWW-Authenticate": _CHALLENGE}  # noqa: RUF012


class Forbidden(PlatformError):
    """A known key whose scope does not grant the route's scope."""

    status_code = 403
    code = "forbidden"

    def __init__(self, principal: Principal, required: Scope) -> None:
        super().__init__(
            f"the key of {principal.name!r} has scope {principal.scope.value!r}; "
            f"this operation needs {required.value!r}",
            required_scope=required.value,
            scope=principal.scope.value,
        )
        self.headers = {
            "WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope", '
            f'scope="{required.value}"'
        }


def keyring_of(app: Any) -> KeyRing:
    ring = getattr(getattr(app, "state", None), "api_keys", None)
    return ring if isinstance(ring, KeyRing) else KeyRing()


def authenticate(authorization: str | None, keyring: KeyRing) -> Principal:
    """The principal of an ``Authorization: Bearer <key>`` header value; raises
    :class:`Unauthorized`."""
    if not authorization:
        raise Unauthorized("missing API key: send the header Authorization: Bearer <key>")
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        raise Unauthorized("malformed Authorization header: expected Bearer <key>")
    if not keyring:
        raise Unauthorized("no API key is configured on this service (API_KEYS is empty)")
    entry = keyring.lookup(key)
    if entry is None:
        raise Unauthorized("unknown API key")
    return Principal(entry.principal, entry.scope)


def _json_error(exc: PlatformError) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = orjson.dumps(exc.to_dict())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    for name, value in getattr(exc, "headers", {}).items():
        headers.append((name.lower().encode(), value.encode()))
    return body, headers


class ApiKeyMiddleware:
    """Authenticates every HTTP request whose path starts with ``prefix``."""

    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        authorization: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        try:
            scope[PRINCIPAL_KEY] = authenticate(authorization, keyring_of(scope.get("app")))
        except Unauthorized as exc:
            body, headers = _json_error(exc)
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def principal_of(request: Request) -> Principal:
    """The authenticated principal (the middleware's, else from the header now)."""
    principal = request.scope.get(PRINCIPAL_KEY)
    if isinstance(principal, Principal):
        return principal
    principal = authenticate(request.headers.get("authorization"), keyring_of(request.app))
    request.scope[PRINCIPAL_KEY] = principal
    return principal


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name=SCHEME_NAME,
    bearerFormat="API key",
    description=(
        "An API key: `Authorization: Bearer <key>`. Scopes: `admin` (changes; implies "
        "`read` and `client`), `read` (every GET, performance and results), `client` "
        "(assign, SDK payload). Missing or unknown key: 401; wrong scope: 403."
    ),
)


class ScopeGuard:
    """The scope a route needs (fixed, or by HTTP method); raises 401/403."""

    def __init__(self, read: Scope, write: Scope | None = None) -> None:
        self.read = read
        self.write = write or read

    def scope_for(self, method: str) -> Scope:
        return self.read if method.upper() in _READ_METHODS else self.write

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = principal_of(request)
        required = self.scope_for(request.method)
        if not principal.allows(required):
            raise Forbidden(principal, required)
        return principal

    def __repr__(self) -> str:
        return f"ScopeGuard(read={self.read.value}, write={self.write.value})"


def require(scope: Scope) -> DependsParam:
    """A router/route dependency: every method needs ``scope``."""
    dep: DependsParam = Depends(ScopeGuard(scope))
    return dep


def require_by_method(*, read: Scope, write: Scope) -> DependsParam:
    """A router dependency: GET/HEAD/OPTIONS need ``read``, the other methods ``write``."""
    dep: DependsParam = Depends(ScopeGuard(read, write))
    return dep


def route_guard(dependencies: Iterable[Any]) -> ScopeGuard | None:
    """The :class:`ScopeGuard` among a route's dependencies, if any."""
    for dep in dependencies:
        guard = getattr(dep, "dependency", None)
        if isinstance(guard, ScopeGuard):
            return guard
    return None


def scope_denied(request: Request, required: Scope) -> Response | None:
    """For routes that skip dependency solving: None when allowed, else the 401/403."""
    try:
        principal = principal_of(request)
        if principal.allows(required):
            return None
        raise Forbidden(principal, required)
    except (Unauthorized, Forbidden) as exc:
        body, headers = _json_error(exc)
        response = Response(body, status_code=exc.status_code)
        response.raw_headers = headers
        return response


class _ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow", title="ErrorBody")

    error: str
    message: str


def auth_responses(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The 401/403 documentation of a protected router, with the service's error model."""
    return {code: {**doc, "model": model} for code, doc in AUTH_RESPONSES.items()}


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": _ErrorBody,
        "description": "`unauthorized`: no API key, a malformed Authorization header or "
        "an unknown key (with `WWW-Authenticate: Bearer`).",
    },
    403: {
        "model": _ErrorBody,
        "description": "`forbidden`: the key's scope does not grant this operation "
        "(`required_scope` names the scope needed).",
    },
}
"""The 401/403 documentation of every protected route (added by the routers)."""


def document_scopes(app: FastAPI) -> None:
    """Make ``app.openapi()`` name, on every protected operation, the scope it needs:
    ``x-required-scope`` and a line ``Scope: `admin`.`` in its description."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for route in iter_route_contexts(app.routes):  # included routers, flattened
            if not getattr(route, "include_in_schema", False) or route.path_format is None:
                continue
            guard = route_guard(getattr(route, "dependencies", ()) or ())
            if guard is None:
                continue
            item = schema.get("paths", {}).get(route.path_format, {})
            for method in route.methods or ():
                op = item.get(method.lower())
                if op is None:
                    continue
                scope = guard.scope_for(method)
                op["x-required-scope"] = scope.value
                op.setdefault("security", [{SCHEME_NAME: []}])
                line = f"Requires an API key with scope `{scope.value}`" + (
                    " (or `admin`)." if scope is not Scope.ADMIN else "."
                )
                op["description"] = (
                    f"{op['description']}\n\n{line}" if op.get("description") else line
                )
                responses = op.setdefault("responses", {})
                for status in ("401", "403"):
                    responses.setdefault(
                        status, {"description": AUTH_RESPONSES[int(status)]["description"]}
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
