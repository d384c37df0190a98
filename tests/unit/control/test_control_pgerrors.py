"""Database errors become 4xx/503, never 500."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg.exceptions._base import PostgresError

from services.assignment.control.pgerrors import ServiceUnavailable, is_retryable, translate
from shared.errors import ConflictError, NotFoundError, ValidationFailed

pytestmark = pytest.mark.unit


def _pg(state: str, message: str, constraint: str | None = None) -> Exception:
    fields = {"C": state, "M": message, "S": "ERROR"}
    if constraint:
        fields["n"] = constraint
    exc: Exception = PostgresError.new(fields)
    return exc


@pytest.mark.parametrize(
    ("exc", "kind", "status", "code"),
    [
        (_pg("23505", "dup", "workflow_schemas_key_key"), ConflictError, 409, "duplicate_key"),
        (
            _pg("23505", "dup", "experiments_one_running_per_schema"),
            ConflictError,
            409,
            "experiment_already_running",
        ),
        (
            _pg("23514", "traffic_allocation_exceeds_100: x", "schema_variants_traffic_sum"),
            ValidationFailed,
            422,
            "traffic_allocation_exceeds_100",
        ),
        (
            _pg("23514", "experiment_arms_invalid: x"),
            ValidationFailed,
            422,
            "experiment_arms_invalid",
        ),
        (
            _pg("23514", "experiment_variant_schema_mismatch: x"),
            ValidationFailed,
            422,
            "experiment_variant_schema_mismatch",
        ),
        (
            _pg("23514", "check", "experiments_coverage_check"),
            ValidationFailed,
            422,
            "check_violation",
        ),
        (_pg("23503", "variant_in_use: x"), ConflictError, 409, "variant_in_use"),
        (_pg("23503", "fk", "schema_variants_schema_fkey"), NotFoundError, 404, "not_found"),
        (
            _pg("23503", "fk", "schema_variants_base_version_fkey"),
            ValidationFailed,
            422,
            "invalid_reference",
        ),
        (
            _pg("55000", "illegal_transition: experiment 1 cannot go from draft to paused"),
            ConflictError,
            409,
            "illegal_transition",
        ),
        (_pg("55000", "experiment_arms_locked: x"), ConflictError, 409, "experiment_arms_locked"),
        (_pg("22P02", "invalid input syntax"), ValidationFailed, 422, "invalid_value"),
        (_pg("23502", "null value"), ValidationFailed, 422, "invalid_value"),
        (_pg("40001", "could not serialize"), ConflictError, 409, "concurrent_update"),
        (_pg("57P01", "terminating connection"), ServiceUnavailable, 503, "database_unavailable"),
        (_pg("XX000", "internal"), ServiceUnavailable, 503, "database_error"),
        (ConnectionResetError(), ServiceUnavailable, 503, "database_unavailable"),
        (
            asyncpg.exceptions._base.DataError("out of int32 range"),
            ValidationFailed,
            422,
            "invalid_value",
        ),
    ],
)
def test_translate(exc: Exception, kind: type[Exception], status: int, code: str) -> None:
    out = translate(exc)
    assert isinstance(out, kind) and out.status_code == status and out.code == code, out.to_dict()


def test_illegal_transition_names_the_current_status() -> None:
    out = translate(
        _pg("55000", "illegal_transition: experiment 1 cannot go from completed to running")
    )
    assert out.details == {"current_status": "completed", "requested_status": "running"}


def test_traffic_error_names_the_constraint() -> None:
    out = translate(
        _pg("23514", "traffic_allocation_exceeds_100: x", "schema_variants_traffic_sum")
    )
    assert out.details["constraint"] == "schema_variants_traffic_sum"
    assert (
        translate(_pg("23514", "c", "schema_variants_key_format")).details["field"] == "variant_key"
    )


def test_retryable() -> None:
    assert is_retryable(_pg("40001", "x")) and is_retryable(_pg("40P01", "x"))
    assert not is_retryable(_pg("23505", "x"))
