"""Building execution events, and the context manager that times one execution."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType

from pydantic import ValidationError

from shared.events import ExecutionEvent, StepResult

from ._errors import AbflowClientError, EmitError
from ._models import Assignment

log = logging.getLogger("shared.client")

__all__ = ["Execution", "build_execution_event", "new_execution_id"]


def new_execution_id() -> str:
    """A fresh execution id (a UUID4 in hex)."""
    return uuid.uuid4().hex


def build_execution_event(
    assignment: Assignment,
    *,
    success: bool,
    duration_ms: float,
    execution_id: str | None = None,
    unit_id: str | None = None,
    risk_score: float | None = None,
    steps: Iterable[StepResult] = (),
    started_at: datetime | None = None,
    completed_at: datetime | None = None,
) -> ExecutionEvent:
    """The event of one finished execution of ``assignment``.

    Schema id and version, variant, experiment and reason come from the assignment; a
    fallback assignment therefore yields an event on the base version with no variant
    and no experiment. ``unit_id`` defaults to the assignment's. Timestamps default to
    now (``completed_at``) and ``completed_at - duration_ms`` (``started_at``).
    """
    if completed_at is None:
        completed_at = (
            started_at + timedelta(milliseconds=duration_ms)
            if started_at is not None
            else datetime.now(UTC)
        )
    if started_at is None:
        started_at = completed_at - timedelta(milliseconds=duration_ms)
    return ExecutionEvent(
        execution_id=execution_id or new_execution_id(),
        schema_id=assignment.schema_id,
        schema_version=assignment.schema_version,
        variant_id=assignment.variant_id,
        variant_key=assignment.variant_key,
        experiment_id=assignment.experiment_id,
        unit_id=unit_id if unit_id is not None else assignment.unit_id,
        success=success,
        duration_ms=duration_ms,
        risk_score=risk_score,
        steps=list(steps),
        started_at=started_at,
        completed_at=completed_at,
        assignment_reason=assignment.reason,
    )


class Execution:
    """Times one execution of an assignment and emits its event on exit.

    Use through :meth:`shared.client.AbflowClient.execution`::

        async with client.execution(assignment) as ex:
            with ex.timed_step("plan"):
                ...
            ex.step("review", success=True, duration_ms=12.5)
            ex.risk_score = 0.31

    On leaving the block the event is emitted with ``success=True``, or ``False`` when
    the block raised an :class:`Exception` (re-raised unchanged) or called
    :meth:`fail`. A cancelled task (``CancelledError``) or ``KeyboardInterrupt`` is not a
    finished execution: nothing is emitted. If emitting fails, the error is logged and
    counted in ``stats.emit_failures``; it is raised (as :class:`EmitError`) only with
    ``strict_emit=True`` and only when the block itself succeeded, so telemetry never
    hides the workflow's own exception.
    """

    def __init__(
        self,
        assignment: Assignment,
        *,
        emit: Callable[[ExecutionEvent], Awaitable[None]],
        unit_id: str | None = None,
        execution_id: str | None = None,
        strict_emit: bool = False,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.assignment = assignment
        self.unit_id = unit_id if unit_id is not None else assignment.unit_id
        self.execution_id = execution_id or new_execution_id()
        self.steps: list[StepResult] = []
        self.risk_score: float | None = None
        self.started_at: datetime | None = None
        self.duration_ms: float | None = None
        self.event: ExecutionEvent | None = None
        """The emitted event (set on exit, also when delivering it failed)."""
        self._emit = emit
        self._strict = strict_emit
        self._clock = clock
        self._t0 = 0.0
        self._failed = False

    def step(self, name: str, success: bool = True, duration_ms: float = 0.0) -> StepResult:
        """Record one step's outcome."""
        result = StepResult(name=name, success=success, duration_ms=max(duration_ms, 0.0))
        self.steps.append(result)
        return result

    @contextmanager
    def timed_step(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as a step; an exception marks it failed and propagates."""
        t0 = self._clock()
        ok = False
        try:
            yield
            ok = True
        finally:
            self.step(name, ok, (self._clock() - t0) * 1000.0)

    def fail(self) -> None:
        """Mark the execution failed without raising."""
        self._failed = True

    @property
    def failed(self) -> bool:
        return self._failed

    async def __aenter__(self) -> Execution:
        self.started_at = datetime.now(UTC)
        self._t0 = self._clock()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, Exception):
            return  # cancelled or interrupted: not a finished execution
        self.duration_ms = max((self._clock() - self._t0) * 1000.0, 0.0)
        started = self.started_at or datetime.now(UTC)
        completed = max(datetime.now(UTC), started)
        try:
            try:
                self.event = build_execution_event(
                    self.assignment,
                    success=exc is None and not self._failed,
                    duration_ms=self.duration_ms,
                    execution_id=self.execution_id,
                    unit_id=self.unit_id,
                    risk_score=self.risk_score,
                    steps=self.steps,
                    started_at=started,
                    completed_at=completed,
                )
            except ValidationError as invalid:
                raise EmitError(f"invalid execution event: {invalid}") from invalid
            await self._emit(self.event)
        except AbflowClientError as emit_exc:
            log.error("execution %s: event not emitted: %s", self.execution_id, emit_exc)
            if self._strict and exc is None:
                raise
