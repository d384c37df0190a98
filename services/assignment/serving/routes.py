"""The assignment hot path: ``POST /api/v1/assign``, ``POST /api/v1/assign/batch`` and
``GET /api/v1/sdk/payload``.

The handlers take the raw :class:`~starlette.requests.Request`: the small JSON body is
parsed with orjson and checked by hand (errors answer 422 in the platform's
``validation_failed`` shape), and the answer is a pre-serialised body from the
snapshot (:class:`~services.assignment.serving.snapshot.Rendered`), so no pydantic
model is validated or serialised per request. The pydantic models below only document
the API (OpenAPI).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from shared.assignment import decide
from shared.auth import Scope, auth_responses, require, route_guard, scope_denied
from shared.http import error_body

from .snapshot import Rendered, SchemaEntry, bucket_json

if TYPE_CHECKING:
    from .component import ServingComponent

__all__ = [
    "MAX_BATCH_UNITS",
    "MAX_BODY_BYTES",
    "AssignBatchRequest",
    "AssignRequest",
    "AssignResponse",
    "router",
]

MAX_BODY_BYTES: Final = 1 << 20
MAX_BATCH_UNITS: Final = 1000
MAX_REF_LENGTH: Final = 200  # schema id/key and unit id
JSON: Final = "application/json"


# --- documentation models (OpenAPI only; never instantiated per request) ----------------
class AssignRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_ref: str = Field(
        alias="schema",
        min_length=1,
        max_length=MAX_REF_LENGTH,
        description="The schema: its id (UUID) or its key.",
    )
    unit_id: str | None = Field(
        default=None,
        max_length=MAX_REF_LENGTH,
        description="The unit to assign; without one (null or empty) a weighted random choice.",
    )
    attributes: dict[str, Any] | None = Field(
        default=None, description="Attributes of the unit (accepted, reserved for targeting)."
    )


class AssignBatchRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    schema_ref: str = Field(alias="schema", min_length=1, max_length=MAX_REF_LENGTH)
    units: list[str | None] = Field(
        min_length=1,
        max_length=MAX_BATCH_UNITS,
        description="Unit ids (each at most 200 characters; null or empty: random choice).",
    )
    attributes: dict[str, Any] | None = None


class AssignResponse(BaseModel):
    schema_id: UUID
    schema_key: str
    revision: int = Field(description="Revision of the schema's config that decided.")
    schema_version: int
    variant_id: UUID | None = Field(description="null: the base version.")
    variant_key: str | None = Field(description="null: the base version.")
    experiment_id: UUID | None
    experiment_key: str | None
    in_experiment: bool
    bucket: float | None = Field(description="The hash value in [0, 1) used, null for random.")
    reason: Literal["experiment", "rollout", "default", "random"]
    effective_config: dict[str, Any] = Field(
        description="The base version's definition with the variant's overrides (RFC 7396)."
    )


def _request_body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": model.model_json_schema(by_alias=True)}},
        }
    }


class ErrorBody(BaseModel):
    """The platform's error shape: ``error`` code, ``message``, more details per error."""

    model_config = ConfigDict(extra="allow")

    error: str
    message: str


_NOT_READY: Final = {
    "model": ErrorBody,
    "description": "The config snapshot is not loaded yet (`not_ready`).",
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "Unknown schema."},
    413: {"model": ErrorBody, "description": "Body larger than 1 MiB (`payload_too_large`)."},
    422: {
        "model": ErrorBody,
        "description": "Invalid request (`validation_failed`, with the field at fault).",
    },
    503: _NOT_READY,
}


class LeanRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose endpoint is called with the raw
    request and returns the response itself: no dependency solving, no body parsing,
    no response model. It keeps the route's OpenAPI description (from its decorator
    arguments), its exception handling and the middlewares. Every endpoint of this
    router is ``async def endpoint(request: Request) -> Response``.

    The one dependency honoured is the route's :class:`~shared.auth.ScopeGuard`
    (declared on the router): checked before the endpoint, 401/403 without calling it.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        guard = route_guard(self.dependencies)
        if guard is None:
            return handler
        required = guard.scope_for(next(iter(self.methods or {"GET"})))

        async def guarded(request: Request) -> Response:
            denied = scope_denied(request, required)
            if denied is not None:
                return denied
            return await handler(request)

        return guarded


router = APIRouter(
    tags=["assignment"],
    route_class=LeanRoute,
    dependencies=[require(Scope.CLIENT)],  # enforced by LeanRoute
    responses=auth_responses(ErrorBody),
)


# --- helpers ----------------------------------------------------------------------------
_JSON_HEADER: Final = (b"content-type", b"application/json")


class JSONBytes(Response):
    """A 200 response whose body is JSON bytes already (no rendering, two headers)."""

    media_type = JSON

    def __init__(self, body: bytes) -> None:  # no super().__init__: nothing to render
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-length", str(len(body)).encode()), _JSON_HEADER]


def _error(status: int, code: str, message: str, **details: Any) -> Response:
    return Response(
        orjson.dumps(error_body(code, message, **details)), status_code=status, media_type=JSON
    )


def _invalid(errors: list[dict[str, Any]]) -> Response:
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"][1:]) or "body"
    return _error(422, "validation_failed", f"{field}: {first['msg']}", detail=errors)


def _err(loc: Sequence[str | int], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": type_}


class _Reject(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _read(request: Request) -> Any:
    """The parsed JSON body; raises :class:`_Reject` (413, 422)."""
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            raise _Reject(_error(400, "client_disconnected", "the client disconnected"))
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _Reject(
                    _error(413, "payload_too_large", f"body larger than {MAX_BODY_BYTES} bytes")
                )
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Reject(_invalid([_err([], f"JSON decode error: {exc}", "json_invalid")])) from None


def _check_ref(
    errors: list[dict[str, Any]], loc: list[str | int], value: Any, *, required: bool
) -> None:
    if value is None:
        if required:
            errors.append(_err(loc, "Field required", "missing"))
    elif type(value) is not str:
        errors.append(_err(loc, "Input should be a valid string", "string_type"))
    elif required and not value:
        errors.append(_err(loc, "String should have at least 1 character", "string_too_short"))
    elif len(value) > MAX_REF_LENGTH:
        errors.append(
            _err(loc, f"String should have at most {MAX_REF_LENGTH} characters", "string_too_long")
        )


def _check_common(data: Any) -> list[dict[str, Any]]:
    if type(data) is not dict:
        return [_err([], "Input should be a valid dictionary or object", "dict_type")]
    errors: list[dict[str, Any]] = []
    _check_ref(errors, ["schema"], data.get("schema"), required=True)
    attributes = data.get("attributes")
    if attributes is not None and type(attributes) is not dict:
        errors.append(_err(["attributes"], "Input should be a valid dictionary", "dict_type"))
    return errors


def _serving(request: Request) -> ServingComponent:
    serving: ServingComponent = request.app.state.serving
    return serving


def _entry(serving: ServingComponent, ref: str) -> SchemaEntry:
    if not serving.follower.loaded:
        raise _Reject(_error(503, "not_ready", "the assignment config snapshot is not loaded yet"))
    entry = serving.snapshot.get(ref)
    if entry is None:
        raise _Reject(_error(404, "not_found", f"unknown schema {ref!r}", schema=ref))
    return entry


# --- endpoints --------------------------------------------------------------------------
@router.post(
    "/api/v1/assign",
    summary="Assign one unit to a variant of a schema",
    response_class=Response,
    responses={200: {"model": AssignResponse, "description": "The decision."}, **_ERRORS},
    openapi_extra=_request_body(AssignRequest),
)
async def assign(request: Request) -> Response:
    try:
        data = await _read(request)
        if type(data) is dict:
            ref = data.get("schema")
            unit_id = data.get("unit_id")
            attributes = data.get("attributes")
        else:
            ref = unit_id = attributes = None
        if not (
            type(ref) is str
            and 0 < len(ref) <= MAX_REF_LENGTH
            and (unit_id is None or (type(unit_id) is str and len(unit_id) <= MAX_REF_LENGTH))
            and (attributes is None or type(attributes) is dict)
        ):
            errors = _check_common(data)
            if type(data) is dict:
                _check_ref(errors, ["unit_id"], unit_id, required=False)
            return _invalid(errors)
        serving = _serving(request)
        entry = _entry(serving, ref)
    except _Reject as reject:
        return reject.response
    d = decide(entry.compiled, unit_id, serving.rng)
    r = entry.render(d)
    r.count()
    bucket = d.bucket
    if r.exposure_prefix is not None and unit_id and bucket is not None:
        serving.exposures.offer(r.exposure_prefix, unit_id, bucket)
    return JSONBytes(r.prefix + bucket_json(bucket) + r.suffix)


@router.post(
    "/api/v1/assign/batch",
    summary="Assign up to 1,000 units of one schema",
    response_class=Response,
    responses={
        200: {
            "model": list[AssignResponse],
            "description": "One decision per unit, in the order of `units`.",
        },
        **_ERRORS,
    },
    openapi_extra=_request_body(AssignBatchRequest),
)
async def assign_batch(request: Request) -> Response:
    try:
        data = await _read(request)
        errors = _check_common(data)
        units = data.get("units") if type(data) is dict else None
        if type(data) is dict:
            if units is None:
                errors.append(_err(["units"], "Field required", "missing"))
            elif type(units) is not list:
                errors.append(_err(["units"], "Input should be a valid list", "list_type"))
            elif not units:
                errors.append(_err(["units"], "List should have at least 1 item", "too_short"))
            elif len(units) > MAX_BATCH_UNITS:
                errors.append(
                    _err(
                        ["units"],
                        f"List should have at most {MAX_BATCH_UNITS} items",
                        "too_long",
                    )
                )
            else:
                for i, unit in enumerate(units):
                    if unit is not None and (type(unit) is not str or len(unit) > MAX_REF_LENGTH):
                        _check_ref(errors, ["units", i], unit, required=False)
                        if len(errors) >= 20:
                            break
        if errors:
            return _invalid(errors)
        serving = _serving(request)
        entry = _entry(serving, data["schema"])
    except _Reject as reject:
        return reject.response
    assert isinstance(units, list)
    compiled = entry.compiled
    rng = serving.rng
    render = entry.render
    offer = serving.exposures.offer
    counts: dict[Rendered, int] = {}
    items: list[bytes] = []
    append = items.append
    for unit_id in units:
        d = decide(compiled, unit_id, rng)
        r = render(d)
        counts[r] = counts.get(r, 0) + 1
        bucket = d.bucket
        append(r.prefix + bucket_json(bucket) + r.suffix)
        if r.exposure_prefix is not None and unit_id and bucket is not None:
            offer(r.exposure_prefix, unit_id, bucket)
    for r, n in counts.items():
        r.count(n)
    return JSONBytes(b"[" + b",".join(items) + b"]")


@router.get(
    "/api/v1/sdk/payload",
    summary="GrowthBook SDK payload of every schema",
    description=(
        'The GrowthBook SDK features payload (`{"features": {...}, "dateUpdated": ...}`): '
        "one feature per schema key whose rules reproduce this service's assignments "
        "(experiment rule with `hashVersion: 2`, then the rollout). Load it into any "
        "official GrowthBook SDK with the attribute `id` = unit id. Supports `ETag` / "
        "`If-None-Match`."
    ),
    response_class=Response,
    responses={
        200: {"description": "The payload.", "content": {JSON: {"schema": {"type": "object"}}}},
        304: {"description": "Unchanged."},
        503: _NOT_READY,
    },
)
async def sdk_payload(request: Request) -> Response:
    serving = _serving(request)
    if not serving.follower.loaded:
        return _error(503, "not_ready", "the assignment config snapshot is not loaded yet")
    body, etag = serving.snapshot.sdk_payload()
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=JSON, headers=headers)
