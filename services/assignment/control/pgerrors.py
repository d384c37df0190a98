"""Translation of PostgreSQL errors into the platform's HTTP errors.

The database enforces the control plane's rules a second time (constraints and triggers
of ``schemas/migrations``); whatever it rejects must reach the client as a 4xx, never as
a 500. The mapping, by SQLSTATE:

==============  ===========================================  =====
SQLSTATE        what                                         HTTP
==============  ===========================================  =====
23505           unique violation (duplicate key; a second    409
                running experiment on a schema)
23514           check violation; trigger rules raised with   422
                this state (``traffic_allocation_exceeds_100``,
                ``experiment_arms_invalid``,
                ``experiment_variant_schema_mismatch``, ...)
23514           ``config_revision_regressed``                409
23503           foreign key: ``variant_in_use`` -> 409, a    409/404/422
                missing parent -> 404, another reference -> 422
23502, 22xxx    not-null, bad text/number representation     422
55000           ``illegal_transition``, ``experiment_arms_   409
                locked``, ``experiment_config_locked``,
                ``schema_version_immutable``, ...
40001, 40P01    serialization failure, deadlock: retried     409
                by :func:`~.uow.run_in_transaction`, then
08xxx, 57Pxx    connection lost, server shutting down        503
other           anything else from the server                503
==============  ===========================================  =====
"""

from __future__ import annotations

import logging
import re

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError

from shared.errors import ConflictError, NotFoundError, PlatformError, ValidationFailed

log = logging.getLogger(__name__)

__all__ = ["ServiceUnavailable", "is_retryable", "translate"]


class ServiceUnavailable(PlatformError):
    """The database cannot answer right now (HTTP 503); the client may retry."""

    status_code = 503
    retriable = True
    code = "database_unavailable"


# constraint name -> (request field at fault, error code)
_CHECK_FIELDS: dict[str, str] = {
    "workflow_schemas_key_format": "key",
    "workflow_schemas_name_length": "name",
    "workflow_schemas_status_check": "status",
    "schema_variants_key_format": "variant_key",
    "schema_variants_name_length": "variant_name",
    "schema_variants_traffic_range": "traffic_allocation",
    "schema_variants_traffic_sum": "traffic_allocation",
    "schema_variants_config_overrides_object": "config_overrides",
    "schema_variants_steps_override_array": "workflow_steps_override",
    "schema_variants_risk_override_object": "risk_config_override",
    "workflow_schema_versions_definition_shape": "definition",
    "experiments_key_format": "experiment_key",
    "experiments_name_length": "experiment_name",
    "experiments_primary_metric_check": "primary_metric",
    "experiments_secondary_metrics_check": "secondary_metrics",
    "experiments_min_sample_size_check": "min_sample_size",
    "experiments_confidence_level_check": "confidence_level",
    "experiments_significance_check": "significance_threshold",
    "experiments_hash_seed_nonempty": "hash_seed",
    "experiments_coverage_check": "coverage",
    "experiments_sequential_tuning_check": "sequential_tuning",
    "experiment_variants_traffic_range": "traffic_percentage",
}
_UNIQUE: dict[str, tuple[str, str]] = {
    "workflow_schemas_key_key": ("key", "duplicate_key"),
    "schema_variants_schema_key_key": ("variant_key", "duplicate_key"),
    "experiments_experiment_key_key": ("experiment_key", "duplicate_key"),
    "experiments_one_running_per_schema": ("schema_id", "experiment_already_running"),
    "experiment_variants_experiment_variant_key": ("variant_id", "duplicate_arm"),
    "experiment_variants_one_control": ("is_control", "control_already_set"),
    "experiment_variants_experiment_position_key": ("position", "duplicate_key"),
}
_FK_NOT_FOUND: dict[str, str] = {
    "schema_variants_schema_fkey": "schema_id",
    "experiments_schema_fkey": "schema_id",
    "experiment_variants_variant_fkey": "variant_id",
    "experiment_variants_experiment_fkey": "experiment_id",
}
_FK_FIELDS: dict[str, str] = {
    "schema_variants_base_version_fkey": "base_version",
    "workflow_schemas_current_version_fkey": "current_version",
    "experiments_winning_variant_fkey": "winning_variant_id",
}
# trigger errors (the message starts with "<code>: ") answered with 409 rather than 422
_CONFLICT_CODES = frozenset({"config_revision_regressed", "variant_in_use"})
_TRIGGER_CODE = re.compile(r"^([a-z0-9_]+): ")
_TRANSITION = re.compile(r"cannot go from (\w+) to (\w+)")

_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    OSError,
    TimeoutError,
)


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: the whole unit of work may simply run again."""
    return isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError)


def _trigger_code(message: str) -> str | None:
    m = _TRIGGER_CODE.match(message)
    return m.group(1) if m else None


def translate(exc: BaseException) -> PlatformError:
    """The :class:`~shared.errors.PlatformError` to answer for a database error."""
    if isinstance(exc, PlatformError):
        return exc
    if isinstance(exc, ClientDataError):
        # client-side encoding of a query argument (e.g. an int out of the int4 range)
        return ValidationFailed(f"invalid value: {exc}", code="invalid_value")
    if not isinstance(exc, asyncpg.PostgresError):
        if isinstance(exc, _UNAVAILABLE):
            return ServiceUnavailable(f"database unavailable: {exc.__class__.__name__}")
        return ServiceUnavailable(
            f"database error: {exc.__class__.__name__}", code="database_error"
        )

    message = str(getattr(exc, "message", None) or exc)
    constraint = getattr(exc, "constraint_name", None)
    code = _trigger_code(message)
    state = getattr(exc, "sqlstate", None) or ""

    if isinstance(exc, asyncpg.UniqueViolationError):
        unique_field, err = _UNIQUE.get(constraint or "", ("", "duplicate_key"))
        if err == "experiment_already_running":
            return ConflictError(
                "another experiment is already running on this schema",
                code=err,
                constraint=constraint,
                field=unique_field,
            )
        return ConflictError(
            f"duplicate {unique_field or 'key'}",
            code=err,
            constraint=constraint,
            field=unique_field or None,
        )

    if isinstance(exc, asyncpg.CheckViolationError):
        if code in _CONFLICT_CODES:
            return ConflictError(message, code=code or "conflict", constraint=constraint)
        if code == "traffic_allocation_exceeds_100" or constraint == "schema_variants_traffic_sum":
            return ValidationFailed(
                "traffic_allocation: the active variants of a schema would total more than 100 percent",
                code="traffic_allocation_exceeds_100",
                constraint="schema_variants_traffic_sum",
                field="traffic_allocation",
                detail=message,
            )
        check_field = _CHECK_FIELDS.get(constraint or "")
        return ValidationFailed(
            f"{check_field or constraint or 'value'}: violates {constraint or code or 'a check'}",
            code=code or "check_violation",
            constraint=constraint,
            field=check_field,
        )

    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        if code in _CONFLICT_CODES:
            return ConflictError(message, code=code or "conflict")
        if constraint in _FK_NOT_FOUND:
            missing = _FK_NOT_FOUND[constraint]
            return NotFoundError(f"{missing}: no such {missing.removesuffix('_id')}", field=missing)
        fk_field = _FK_FIELDS.get(constraint or "")
        return ValidationFailed(
            f"{fk_field or 'reference'}: refers to nothing",
            code="invalid_reference",
            constraint=constraint,
            field=fk_field,
        )

    if state == "55000":
        transition: dict[str, object] = {}
        if code == "illegal_transition" and (m := _TRANSITION.search(message)):
            transition = {"current_status": m.group(1), "requested_status": m.group(2)}
        return ConflictError(message, code=code or "invalid_state", **transition)

    if is_retryable(exc):
        return ConflictError(
            "a concurrent change interfered; retry the request", code="concurrent_update"
        )
    if state.startswith("23") or state.startswith("22"):
        return ValidationFailed(
            message, code="invalid_value", column=getattr(exc, "column_name", None)
        )
    if state.startswith("08") or state.startswith("57") or state.startswith("53"):
        return ServiceUnavailable(f"database unavailable: {message}")
    log.error("unexpected database error %s: %s", state, message)
    return ServiceUnavailable(f"database error {state}", code="database_error")
