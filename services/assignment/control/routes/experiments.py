"""``/api/v1/experiments``: experiments and their lifecycle (as in the seed).

``GET /statuses`` and ``GET /{id}/status`` belong to the analysis service (the gateway
routes them there). ``{experiment_id}`` is a UUID, so ``/statuses`` never reaches a
handler here by accident: it answers 422.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from shared.auth import Scope, auth_responses, require_by_method

from ..models.common import ErrorBody, error_responses
from ..models.experiments import (
    ArmIn,
    ExperimentCreate,
    ExperimentOut,
    ExperimentPage,
    ExperimentStatus,
    ExperimentUpdate,
)
from ..ops import experiments as ops
from .deps import ContextDep, ControlDep, IfMatchDep, PageDep, expected_version, set_etag

router = APIRouter(
    prefix="/api/v1/experiments",
    tags=["experiments"],
    # GET: scope read; every change (POST, PATCH, DELETE, lifecycle actions): admin
    dependencies=[require_by_method(read=Scope.READ, write=Scope.ADMIN)],
    responses=auth_responses(ErrorBody),
)

_TRANSITIONS = {
    "start": "Start a draft experiment (>= 2 variants, one control, 100 percent, none other running)",
    "pause": "Pause a running experiment (units fall back to the rollout)",
    "resume": "Resume a paused experiment",
    "complete": "Complete a running or paused experiment (records the end time and the verdict)",
    "cancel": "Cancel a draft, running or paused experiment",
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ExperimentOut,
    summary="Create an experiment (draft)",
    responses=error_responses(404, 409, 422, 503),
)
async def create_experiment(
    body: ExperimentCreate, control: ControlDep, ctx: ContextDep, response: Response
) -> ExperimentOut:
    out = await control.write(
        ctx, lambda uow: ops.create_experiment(uow, body), entity="experiment", action="create"
    )
    set_etag(response, out.version)
    response.headers["Location"] = f"/api/v1/experiments/{out.id}"
    return out


@router.get(
    "",
    response_model=ExperimentPage,
    summary="List experiments (filter by status and schema; newest first)",
    responses=error_responses(422, 503),
)
async def list_experiments(
    control: ControlDep,
    page: PageDep,
    status_: Annotated[ExperimentStatus | None, Query(alias="status")] = None,
    schema_id: Annotated[UUID | None, Query()] = None,
) -> ExperimentPage:
    return await control.read(
        lambda conn: ops.list_experiments(
            conn, status=status_, schema_id=schema_id, limit=page.limit, offset=page.offset
        )
    )


@router.get(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="Get an experiment with its variants",
    responses=error_responses(404, 422, 503),
)
async def get_experiment(
    experiment_id: UUID, control: ControlDep, response: Response
) -> ExperimentOut:
    out = await control.read(lambda conn: ops.get_experiment(conn, experiment_id))
    set_etag(response, out.version)
    return out


@router.patch(
    "/{experiment_id}",
    response_model=ExperimentOut,
    summary="Update an experiment (only name/description/hypothesis once it left draft)",
    responses=error_responses(404, 409, 422, 503),
)
async def update_experiment(
    experiment_id: UUID,
    body: ExperimentUpdate,
    control: ControlDep,
    ctx: ContextDep,
    if_match: IfMatchDep,
    response: Response,
) -> ExperimentOut:
    expected = expected_version(body.version, if_match)
    out = await control.write(
        ctx,
        lambda uow: ops.update_experiment(uow, experiment_id, body, expected),
        entity="experiment",
        action="update",
    )
    set_etag(response, out.version)
    return out


def _transition_route(action: str) -> None:
    async def handler(
        experiment_id: UUID,
        control: ControlDep,
        ctx: ContextDep,
        if_match: IfMatchDep,
        response: Response,
    ) -> ExperimentOut:
        out = await control.write(
            ctx,
            lambda uow: ops.change_experiment_status(uow, experiment_id, action, if_match),
            entity="experiment",
            action=action,
        )
        set_etag(response, out.version)
        return out

    handler.__name__ = f"{action}_experiment"
    router.add_api_route(
        f"/{{experiment_id}}/{action}",
        handler,
        methods=["POST"],
        response_model=ExperimentOut,
        summary=_TRANSITIONS[action],
        description="An illegal transition answers 409 with `current_status`.",
        responses=error_responses(404, 409, 422, 503),
        name=f"{action}_experiment",
    )


for _action in _TRANSITIONS:
    _transition_route(_action)


@router.post(
    "/{experiment_id}/variants",
    status_code=status.HTTP_201_CREATED,
    response_model=ExperimentOut,
    summary="Add a variant (arm) to a draft experiment",
    responses=error_responses(404, 409, 422, 503),
)
async def add_variant(
    experiment_id: UUID,
    body: ArmIn,
    control: ControlDep,
    ctx: ContextDep,
    if_match: IfMatchDep,
    response: Response,
) -> ExperimentOut:
    out = await control.write(
        ctx,
        lambda uow: ops.add_arm(uow, experiment_id, body, if_match),
        entity="experiment",
        action="add_variant",
    )
    set_etag(response, out.version)
    return out


@router.delete(
    "/{experiment_id}/variants/{variant_id}",
    response_model=ExperimentOut,
    summary="Remove a variant (arm) from a draft experiment",
    responses=error_responses(404, 409, 422, 503),
)
async def remove_variant(
    experiment_id: UUID,
    variant_id: UUID,
    control: ControlDep,
    ctx: ContextDep,
    if_match: IfMatchDep,
    response: Response,
) -> ExperimentOut:
    out = await control.write(
        ctx,
        lambda uow: ops.remove_arm(uow, experiment_id, variant_id, if_match),
        entity="experiment",
        action="remove_variant",
    )
    set_etag(response, out.version)
    return out


# the seed writes the collection as "/": accept it without a redirect (not in the schema)
router.add_api_route(
    "/",
    create_experiment,
    methods=["POST"],
    status_code=201,
    response_model=ExperimentOut,
    include_in_schema=False,
)
router.add_api_route(
    "/", list_experiments, methods=["GET"], response_model=ExperimentPage, include_in_schema=False
)
