"""The access-control setting every HTTP service reads (``API_KEYS``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .keys import KeyRing

__all__ = ["AuthSettings"]


class AuthSettings(BaseSettings):
    """``API_KEYS``: comma-separated ``principal:scope:sha256hex`` entries (see
    ``docs/security.md``). Empty: no key is accepted, every protected route answers 401
    (fail closed) and the service logs a warning at start."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    api_keys: str = Field(
        default="",
        description="principal:scope:sha256hex entries separated by commas "
        "(python -m shared.auth create --principal NAME --scope admin|read|client).",
    )

    def keyring(self) -> KeyRing:
        """The parsed keys; a malformed entry raises ``ConfigurationError`` (fail fast)."""
        return KeyRing.parse(self.api_keys)
