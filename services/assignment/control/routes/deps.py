"""Dependencies of the control routes: the plane, the caller, If-Match, pagination."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response

from shared.auth import principal_of
from shared.errors import ConflictError, ValidationFailed

from ..audit import RequestContext
from ..component import ControlPlane
from ..pgerrors import ServiceUnavailable

__all__ = [
    "ContextDep",
    "ControlDep",
    "IfMatchDep",
    "PageDep",
    "Pagination",
    "expected_version",
    "set_etag",
]

_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,10})"?\s*$')


def get_control(request: Request) -> ControlPlane:
    plane = getattr(request.app.state, "control", None)
    if not isinstance(plane, ControlPlane):
        raise ServiceUnavailable("the control plane is not configured", code="not_configured")
    return plane


ControlDep = Annotated[ControlPlane, Depends(get_control)]


def get_context(
    request: Request,
    control: ControlDep,
    x_actor: Annotated[
        str | None,
        Header(
            alias="X-Actor",
            description="On whose behalf the key's holder makes the change (optional): the "
            "audit actor becomes `principal (X-Actor)`. The header name is configurable: "
            "ABFLOW_CONTROL_ACTOR_HEADER.",
        ),
    ] = None,
    x_request_id: Annotated[
        str | None, Header(alias="X-Request-ID", description="Recorded with the audit row.")
    ] = None,
) -> RequestContext:
    """The audit actor: the principal of the API key (``API_KEYS``), followed by the
    ``X-Actor`` header's value in parentheses when one is sent (e.g. the console's user),
    e.g. ``ci-deployer`` or ``console (alice)``. Only the principal is authenticated."""
    principal = principal_of(request)
    header = control.settings.actor_header
    raw = x_actor if header.lower() == "x-actor" else request.headers.get(header)
    on_behalf = (raw or "").strip()
    if len(on_behalf) > 200:
        raise ValidationFailed(
            f"{control.settings.actor_header}: at most 200 characters",
            field=control.settings.actor_header,
        )
    actor = principal.name
    if on_behalf and on_behalf != principal.name:
        actor = f"{principal.name} ({on_behalf})"
    return RequestContext(actor=actor, request_id=x_request_id[:200] if x_request_id else None)


ContextDep = Annotated[RequestContext, Depends(get_context)]


def get_if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='Expected row version, e.g. `"3"` (the ETag of the last read); stale -> 409.',
        ),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    m = _ETAG.match(if_match)
    if not m:
        raise ValidationFailed('If-Match: expected a version such as "3"', field="If-Match")
    return int(m.group(1))


IfMatchDep = Annotated[int | None, Depends(get_if_match)]


def expected_version(body_version: int | None, if_match: int | None) -> int | None:
    """The version the caller expects (body ``version`` or If-Match; they must agree)."""
    if body_version is not None and if_match is not None and body_version != if_match:
        raise ConflictError(
            "the body's version and If-Match disagree",
            code="stale_version",
            expected_version=body_version,
            if_match=if_match,
        )
    return body_version if body_version is not None else if_match


@dataclass(frozen=True, slots=True)
class Pagination:
    limit: int
    offset: int


def get_page(
    control: ControlDep,
    limit: Annotated[
        int | None, Query(ge=1, le=1000, description="Page size (default 50, at most 200).")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0,
) -> Pagination:
    cap = control.settings.max_page_size
    if limit is not None and limit > cap:
        raise ValidationFailed(f"limit: at most {cap}", field="limit", max=cap)
    return Pagination(limit=limit or control.settings.default_page_size, offset=offset)


PageDep = Annotated[Pagination, Depends(get_page)]


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'
