"""Error types shared by the services.

    PlatformError
    ├── ConfigurationError     bad or missing settings: fail fast at start
    ├── MigrationError         a migration failed, or one applied was edited
    ├── NotFoundError          -> HTTP 404
    ├── ConflictError          -> HTTP 409 (duplicate key, stale version, illegal transition)
    ├── ValidationFailed       -> HTTP 422 (a rule that pydantic cannot express)
    └── InvalidEvent           an event that goes to the dead-letter topic (``code`` says why)

Errors carry behaviour: ``status_code`` for the HTTP edge, ``retriable`` for loops
that decide between retry and dead-letter.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "InvalidEvent",
    "MigrationError",
    "NotFoundError",
    "PlatformError",
    "ValidationFailed",
]


class PlatformError(Exception):
    status_code: int = 500
    retriable: bool = False
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class ConfigurationError(PlatformError):
    code = "configuration_error"


class MigrationError(PlatformError):
    code = "migration_error"


class NotFoundError(PlatformError):
    status_code = 404
    code = "not_found"


class ConflictError(PlatformError):
    status_code = 409
    code = "conflict"


class ValidationFailed(PlatformError):
    status_code = 422
    code = "validation_failed"


class InvalidEvent(PlatformError):
    """An event that cannot be processed; ``code`` names the reason for the dead-letter topic."""

    code = "invalid_event"
