"""``/api/v1/experiments``: results (the lifecycle API belongs to the control plane)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.analysis.experiments import (
    ExperimentStatus,
    ExperimentStatuses,
    experiment_status,
    experiment_statuses,
)
from services.analysis.routes.deps import (
    ERROR_RESPONSES,
    DbDep,
    ErrorBody,
    ExposureCacheDep,
    json_response,
)
from shared.auth import Scope, auth_responses, require
from shared.results import ExperimentResult, WinnerDecision, winner_of

router = APIRouter(
    prefix="/api/v1/experiments",
    tags=["experiment results"],
    dependencies=[require(Scope.READ)],
    responses={**ERROR_RESPONSES, **auth_responses(ErrorBody)},
)


@router.get(
    "/statuses",
    response_model=ExperimentStatuses,
    summary="Dashboard rows: status, progress, per-variant n, headline result, SRM flag, winner",
)
async def statuses(
    db: DbDep,
    cache: ExposureCacheDep,
    status: ExperimentStatus | None = None,
    schema_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> ExperimentStatuses:
    return await experiment_statuses(db, status, schema_id, limit, offset, cache)


@router.get(
    "/{experiment_id}/status",
    response_model=ExperimentResult,
    summary="Per variant: n, completion, metrics with CIs against control (Holm), SRM, "
    "recommendation, projected completion",
)
async def status(experiment_id: UUID, db: DbDep, cache: ExposureCacheDep) -> Response:
    return json_response(await experiment_status(db, experiment_id, cache))


@router.get(
    "/{experiment_id}/winner",
    response_model=WinnerDecision,
    summary="The verdict completing the experiment now would record (winner, p-value, effect size)",
)
async def winner(experiment_id: UUID, db: DbDep, cache: ExposureCacheDep) -> Response:
    return json_response(winner_of(await experiment_status(db, experiment_id, cache)))
