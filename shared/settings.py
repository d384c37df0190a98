"""Settings base shared by every service.

Each service subclasses :class:`BaseServiceSettings` and adds its own fields. Values
come from environment variables (and a `.env` file when present); there is no
hidden default for anything that must point at real infrastructure in production,
but local defaults match the ports used by `deploy/local/stack.py`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_DATABASE_URL = "postgresql://abflow:abflow@127.0.0.1:15432/abflow"


class BaseServiceSettings(BaseSettings):
    """Connection settings common to all services."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default=DEFAULT_KAFKA, description="Comma-separated Kafka bootstrap servers."
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, description="PostgreSQL DSN (postgresql://...)."
    )
    topic_prefix: str = Field(
        default="",
        description="Prefix for every topic name; tests use it to isolate themselves.",
    )
    log_level: str = Field(default="INFO")


class HttpEdgeSettings(BaseSettings):
    """Limits of the HTTP edge every service shares (:mod:`shared.http`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        le=1 << 30,
        description="Largest request body accepted (MAX_BODY_BYTES); larger: 413.",
    )
