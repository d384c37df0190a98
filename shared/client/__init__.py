"""The orchestrator client of abflow.

An orchestrator asks which version of a workflow schema to run for a unit (a
customer, a project, a tenant), runs it, and reports the outcome::

    from shared.client import AbflowClient

    async with AbflowClient("http://127.0.0.1:18080", kafka_bootstrap="127.0.0.1:19092") as client:
        assignment = await client.assign("checkout-flow", unit_id="customer-42")
        async with client.execution(assignment) as ex:
            with ex.timed_step("plan"):
                plan = make_plan(assignment.config.workflow_steps)
            ex.risk_score = score(plan, assignment.config.risk_config)
            run(plan)  # an exception here emits success=False and propagates

``assign`` has a per-attempt timeout, one retry, a short TTL cache, and falls back to
the schema's base version (``reason="fallback"``) when the assignment service cannot be
reached; ``emit_execution`` and :meth:`AbflowClient.execution` send an
:class:`~shared.events.ExecutionEvent` through an idempotent Kafka producer. See
``docs/client.md``. :class:`SyncAbflowClient` (``shared.client.sync``) is the blocking
twin.
"""

from ._errors import (
    AbflowClientError,
    AssignmentRejectedError,
    AssignmentUnavailableError,
    EmitError,
)
from ._execution import Execution, build_execution_event, new_execution_id
from ._models import AssignedConfig, Assignment, ClientStats, SchemaFallback
from ._sink import EventSink, KafkaEventSink, encode_event
from .client import DEFAULT_ASSIGNMENT_URL, AbflowClient, ClientSettings
from .sync import SyncAbflowClient

__all__ = [
    "DEFAULT_ASSIGNMENT_URL",
    "AbflowClient",
    "AbflowClientError",
    "AssignedConfig",
    "Assignment",
    "AssignmentRejectedError",
    "AssignmentUnavailableError",
    "ClientSettings",
    "ClientStats",
    "EmitError",
    "EventSink",
    "Execution",
    "KafkaEventSink",
    "SchemaFallback",
    "SyncAbflowClient",
    "build_execution_event",
    "encode_event",
    "new_execution_id",
]
