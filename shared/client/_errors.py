"""Errors raised by the orchestrator client.

    AbflowClientError
    ├── AssignmentUnavailableError   the service could not be reached and no fallback is known
    ├── AssignmentRejectedError      the service answered 4xx (unknown schema, bad request)
    └── EmitError                    an execution event could not be delivered to Kafka

``retriable`` says whether calling again later may succeed.
"""

from __future__ import annotations

__all__ = [
    "AbflowClientError",
    "AssignmentRejectedError",
    "AssignmentUnavailableError",
    "EmitError",
]


class AbflowClientError(Exception):
    """Base class of every error the client raises."""

    retriable: bool = False


class AssignmentUnavailableError(AbflowClientError):
    """The assignment service did not answer, and there is no fallback for the schema.

    Configure one with ``AbflowClient(fallbacks={...})`` or
    :meth:`~shared.client.AbflowClient.set_fallback`.
    """

    retriable = True


class AssignmentRejectedError(AbflowClientError):
    """The assignment service answered with a 4xx status (the request is at fault)."""

    def __init__(self, message: str, status_code: int, body: object = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class EmitError(AbflowClientError):
    """An execution event could not be delivered to Kafka."""

    retriable = True
