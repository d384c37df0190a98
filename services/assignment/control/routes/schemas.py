"""``/api/v1/schemas``: workflow schemas, their immutable versions, diffs and history."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response, status

from shared.auth import Scope, auth_responses, require_by_method

from ..models.common import ErrorBody, error_responses
from ..models.schemas import (
    HistoryPage,
    SchemaCreate,
    SchemaDiff,
    SchemaOut,
    SchemaPage,
    SchemaUpdate,
    VersionCreate,
    VersionOut,
    VersionPage,
)
from ..ops import schemas as ops
from .deps import ContextDep, ControlDep, IfMatchDep, PageDep, expected_version, set_etag

router = APIRouter(
    prefix="/api/v1/schemas",
    tags=["schemas"],
    # GET: scope read; every change (POST, PATCH, DELETE, lifecycle actions): admin
    dependencies=[require_by_method(read=Scope.READ, write=Scope.ADMIN)],
    responses=auth_responses(ErrorBody),
)

VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1, description="Version number (1, 2, ...).")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SchemaOut,
    summary="Register a workflow schema (its definition becomes version 1)",
    responses=error_responses(409, 422, 503),
)
async def create_schema(
    body: SchemaCreate, control: ControlDep, ctx: ContextDep, response: Response
) -> SchemaOut:
    out = await control.write(
        ctx, lambda uow: ops.create_schema(uow, body), entity="schema", action="create"
    )
    set_etag(response, out.version)
    response.headers["Location"] = f"/api/v1/schemas/{out.id}"
    return out


@router.get(
    "",
    response_model=SchemaPage,
    summary="List workflow schemas",
    responses=error_responses(422, 503),
)
async def list_schemas(
    control: ControlDep,
    page: PageDep,
    status_: Annotated[Literal["active", "archived"] | None, Query(alias="status")] = None,
    deliverable_type: Annotated[str | None, Query(max_length=100)] = None,
) -> SchemaPage:
    return await control.read(
        lambda conn: ops.list_schemas(
            conn,
            status=status_,
            deliverable_type=deliverable_type,
            limit=page.limit,
            offset=page.offset,
        )
    )


@router.get(
    "/{schema_id}",
    response_model=SchemaOut,
    summary="Get a workflow schema with its current definition",
    responses=error_responses(404, 422, 503),
)
async def get_schema(schema_id: UUID, control: ControlDep, response: Response) -> SchemaOut:
    out = await control.read(lambda conn: ops.get_schema(conn, schema_id))
    set_etag(response, out.version)
    return out


@router.patch(
    "/{schema_id}",
    response_model=SchemaOut,
    summary="Update a schema's name, description or deliverable type",
    responses=error_responses(404, 409, 422, 503),
)
async def update_schema(
    schema_id: UUID,
    body: SchemaUpdate,
    control: ControlDep,
    ctx: ContextDep,
    if_match: IfMatchDep,
    response: Response,
) -> SchemaOut:
    expected = expected_version(body.version, if_match)
    out = await control.write(
        ctx,
        lambda uow: ops.update_schema(uow, schema_id, body, expected),
        entity="schema",
        action="update",
    )
    set_etag(response, out.version)
    return out


@router.delete(
    "/{schema_id}",
    response_model=SchemaOut,
    summary="Archive a schema (its config is removed from the assignment service: tombstone)",
    responses=error_responses(404, 409, 422, 503),
)
async def archive_schema(
    schema_id: UUID, control: ControlDep, ctx: ContextDep, if_match: IfMatchDep, response: Response
) -> SchemaOut:
    out = await control.write(
        ctx,
        lambda uow: ops.archive_schema(uow, schema_id, if_match),
        entity="schema",
        action="archive",
    )
    set_etag(response, out.version)
    return out


@router.post(
    "/{schema_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=VersionOut,
    summary="Publish a new immutable version (it becomes the current version)",
    responses=error_responses(404, 409, 422, 503),
)
async def publish_version(
    schema_id: UUID,
    body: VersionCreate,
    control: ControlDep,
    ctx: ContextDep,
    if_match: IfMatchDep,
    response: Response,
) -> VersionOut:
    expected = expected_version(body.version, if_match)
    out = await control.write(
        ctx,
        lambda uow: ops.publish_version(uow, schema_id, body, expected),
        entity="schema",
        action="publish_version",
    )
    response.headers["Location"] = f"/api/v1/schemas/{schema_id}/versions/{out.version_number}"
    return out


@router.get(
    "/{schema_id}/versions",
    response_model=VersionPage,
    summary="List a schema's versions (oldest first)",
    responses=error_responses(404, 422, 503),
)
async def list_versions(schema_id: UUID, control: ControlDep, page: PageDep) -> VersionPage:
    return await control.read(
        lambda conn: ops.list_versions(conn, schema_id, limit=page.limit, offset=page.offset)
    )


@router.get(
    "/{schema_id}/versions/{version_number}",
    response_model=VersionOut,
    summary="Get one version of a schema",
    responses=error_responses(404, 422, 503),
)
async def get_version(
    schema_id: UUID, version_number: VersionNumber, control: ControlDep
) -> VersionOut:
    return await control.read(lambda conn: ops.get_version(conn, schema_id, version_number))


@router.get(
    "/{schema_id}/diff",
    response_model=SchemaDiff,
    summary="Structural diff between two versions (added / removed / changed JSON paths)",
    responses=error_responses(404, 422, 503),
)
async def diff_versions(
    schema_id: UUID,
    control: ControlDep,
    from_: Annotated[
        int | None,
        Query(alias="from", ge=1, le=2**31 - 1, description="Default: the version before `to`."),
    ] = None,
    to: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Default: the current version.")
    ] = None,
) -> SchemaDiff:
    return await control.read(lambda conn: ops.diff_versions(conn, schema_id, from_, to))


@router.get(
    "/{schema_id}/history",
    response_model=HistoryPage,
    summary="Audit trail of the schema, its variants and experiments (newest first)",
    responses=error_responses(404, 422, 503),
)
async def schema_history(
    schema_id: UUID,
    control: ControlDep,
    page: PageDep,
    entity_type: Annotated[Literal["schema", "variant", "experiment"] | None, Query()] = None,
) -> HistoryPage:
    return await control.read(
        lambda conn: ops.schema_history(
            conn, schema_id, entity_type=entity_type, limit=page.limit, offset=page.offset
        )
    )


# the seed writes the collection as "/": accept it without a redirect (not in the schema)
router.add_api_route(
    "/",
    create_schema,
    methods=["POST"],
    status_code=201,
    response_model=SchemaOut,
    include_in_schema=False,
)
router.add_api_route(
    "/", list_schemas, methods=["GET"], response_model=SchemaPage, include_in_schema=False
)
