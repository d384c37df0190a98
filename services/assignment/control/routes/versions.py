"""``/api/v1/versions``: statistics, schema variants and traffic allocation (as in the seed)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from shared.auth import Scope, auth_responses, require_by_method

from ..models.common import ErrorBody, error_responses
from ..models.variants import (
    TrafficAllocationOut,
    TrafficAllocationRequest,
    VariantCreate,
    VariantOut,
    VariantPage,
    VariantStatus,
    VariantUpdate,
    VersionStats,
)
from ..ops import stats as stats_ops
from ..ops import variants as ops
from .deps import ContextDep, ControlDep, IfMatchDep, PageDep, expected_version, set_etag

router = APIRouter(
    prefix="/api/v1/versions",
    tags=["versions"],
    # GET: scope read; every change (POST, PATCH, DELETE, lifecycle actions): admin
    dependencies=[require_by_method(read=Scope.READ, write=Scope.ADMIN)],
    responses=auth_responses(ErrorBody),
)


@router.get(
    "/stats",
    response_model=VersionStats,
    summary="Version-control statistics (schemas, versions, variants, experiments)",
    responses=error_responses(503),
)
async def stats(control: ControlDep) -> VersionStats:
    return await control.read(stats_ops.version_stats)


@router.post(
    "/variants",
    status_code=status.HTTP_201_CREATED,
    response_model=VariantOut,
    summary="Create a variant (draft) of a schema",
    responses=error_responses(404, 409, 422, 503),
)
async def create_variant(
    body: VariantCreate, control: ControlDep, ctx: ContextDep, response: Response
) -> VariantOut:
    out = await control.write(
        ctx, lambda uow: ops.create_variant(uow, body), entity="variant", action="create"
    )
    set_etag(response, out.version)
    response.headers["Location"] = f"/api/v1/versions/variants/{out.id}"
    return out


@router.get(
    "/variants",
    response_model=VariantPage,
    summary="List variants (filter by schema and status; paginated)",
    responses=error_responses(422, 503),
)
async def list_variants(
    control: ControlDep,
    page: PageDep,
    schema_id: Annotated[UUID | None, Query()] = None,
    status_: Annotated[VariantStatus | None, Query(alias="status")] = None,
) -> VariantPage:
    return await control.read(
        lambda conn: ops.list_variants(
            conn, schema_id=schema_id, status=status_, limit=page.limit, offset=page.offset
        )
    )


@router.get(
    "/variants/{variant_id}",
    response_model=VariantOut,
    summary="Get a variant with its effective definition",
    responses=error_responses(404, 422, 503),
)
async def get_variant(variant_id: UUID, control: ControlDep, response: Response) -> VariantOut:
    out = await control.read(lambda conn: ops.get_variant(conn, variant_id))
    set_etag(response, out.version)
    return out


@router.patch(
    "/variants/{variant_id}",
    response_model=VariantOut,
    summary="Update a variant (overrides, name, base version, traffic allocation)",
    responses=error_responses(404, 409, 422, 503),
)
async def update_variant(
    variant_id: UUID,
    body: VariantUpdate,
    control: ControlDep,
    ctx: ContextDep,
    if_match: IfMatchDep,
    response: Response,
) -> VariantOut:
    expected = expected_version(body.version, if_match)
    out = await control.write(
        ctx,
        lambda uow: ops.update_variant(uow, variant_id, body, expected),
        entity="variant",
        action="update",
    )
    set_etag(response, out.version)
    return out


async def _status(
    control: ControlDep,
    ctx: ContextDep,
    variant_id: UUID,
    action: str,
    if_match: int | None,
    response: Response,
) -> VariantOut:
    out = await control.write(
        ctx,
        lambda uow: ops.change_variant_status(uow, variant_id, action, if_match),
        entity="variant",
        action=action,
    )
    set_etag(response, out.version)
    return out


@router.delete(
    "/variants/{variant_id}",
    response_model=VariantOut,
    summary="Archive a variant (never deleted; archiving an archived variant changes nothing)",
    responses=error_responses(404, 409, 422, 503),
)
async def archive_variant(
    variant_id: UUID, control: ControlDep, ctx: ContextDep, if_match: IfMatchDep, response: Response
) -> VariantOut:
    return await _status(control, ctx, variant_id, "archive", if_match, response)


@router.post(
    "/variants/{variant_id}/activate",
    response_model=VariantOut,
    summary="Activate a variant (it enters the rollout with its traffic allocation)",
    responses=error_responses(404, 409, 422, 503),
)
async def activate_variant(
    variant_id: UUID, control: ControlDep, ctx: ContextDep, if_match: IfMatchDep, response: Response
) -> VariantOut:
    return await _status(control, ctx, variant_id, "activate", if_match, response)


@router.post(
    "/variants/{variant_id}/pause",
    response_model=VariantOut,
    summary="Pause an active variant (it leaves the rollout)",
    responses=error_responses(404, 409, 422, 503),
)
async def pause_variant(
    variant_id: UUID, control: ControlDep, ctx: ContextDep, if_match: IfMatchDep, response: Response
) -> VariantOut:
    return await _status(control, ctx, variant_id, "pause", if_match, response)


@router.post(
    "/schemas/{schema_id}/traffic-allocation",
    response_model=TrafficAllocationOut,
    summary="Set several variants' traffic allocations atomically",
    responses=error_responses(404, 409, 422, 503),
)
async def traffic_allocation(
    schema_id: UUID, body: TrafficAllocationRequest, control: ControlDep, ctx: ContextDep
) -> TrafficAllocationOut:
    return await control.write(
        ctx,
        lambda uow: ops.set_traffic_allocation(uow, schema_id, body),
        entity="variant",
        action="traffic_allocation",
    )
