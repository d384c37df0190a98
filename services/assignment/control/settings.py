"""Settings of the control plane (environment prefix ``ABFLOW_CONTROL_``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings

__all__ = ["ControlSettings"]


class ControlSettings(BaseServiceSettings):
    """The control API, its database pool and the outbox relay.

    Connection fields (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``, ``TOPIC_PREFIX``)
    come from :class:`~shared.settings.BaseServiceSettings` without a prefix; the
    fields below read ``ABFLOW_CONTROL_<NAME>``.
    """

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    pool_min_size: int = Field(
        default=1, ge=1, le=100, validation_alias="ABFLOW_CONTROL_POOL_MIN_SIZE"
    )
    pool_max_size: int = Field(
        default=10, ge=1, le=200, validation_alias="ABFLOW_CONTROL_POOL_MAX_SIZE"
    )
    relay_enabled: bool = Field(
        default=True,
        validation_alias="ABFLOW_CONTROL_RELAY_ENABLED",
        description="Run the outbox relay in this process (one replica at a time publishes).",
    )
    relay_poll_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        validation_alias="ABFLOW_CONTROL_RELAY_POLL_INTERVAL_S",
        description="Longest wait between two outbox scans (NOTIFY wakes the relay sooner).",
    )
    relay_batch_size: int = Field(
        default=500, ge=1, le=10_000, validation_alias="ABFLOW_CONTROL_RELAY_BATCH_SIZE"
    )
    outbox_retention_s: float = Field(
        default=7 * 86400,
        ge=0,
        validation_alias="ABFLOW_CONTROL_OUTBOX_RETENTION_S",
        description="Published outbox rows older than this are deleted (each schema's "
        "latest row is kept).",
    )
    outbox_retention_interval_s: float = Field(
        default=3600,
        gt=0,
        validation_alias="ABFLOW_CONTROL_OUTBOX_RETENTION_INTERVAL_S",
        description="How often the active relay runs the retention pass.",
    )
    relay_lock_key: int = Field(
        default=0x61626663,
        validation_alias="ABFLOW_CONTROL_RELAY_LOCK_KEY",
        description="pg_advisory_lock key held by the active relay (one per database).",
    )
    default_page_size: int = Field(
        default=50, ge=1, le=1000, validation_alias="ABFLOW_CONTROL_DEFAULT_PAGE_SIZE"
    )
    max_page_size: int = Field(
        default=200, ge=1, le=1000, validation_alias="ABFLOW_CONTROL_MAX_PAGE_SIZE"
    )
    actor_header: str = Field(
        default="X-Actor",
        min_length=1,
        validation_alias="ABFLOW_CONTROL_ACTOR_HEADER",
        description="Request header naming on whose behalf the API key's principal makes a "
        "change (recorded as `principal (value)` in audit_log.actor).",
    )
    transaction_retries: int = Field(
        default=5,
        ge=0,
        le=50,
        validation_alias="ABFLOW_CONTROL_TRANSACTION_RETRIES",
        description="Retries of a unit of work after a deadlock or serialization failure.",
    )

    @model_validator(mode="after")
    def _page_sizes(self) -> ControlSettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size exceeds max_page_size")
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size exceeds pool_max_size")
        return self
