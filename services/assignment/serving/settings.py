"""Settings of the serving half of the assignment service (environment prefix
``ABFLOW_SERVING_``; see ``docs/assignment.md``)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import BaseServiceSettings
from shared.topics import CONFIG, EXPOSURES

__all__ = ["ServingSettings"]


def _default_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _env(name: str) -> str:
    return f"ABFLOW_SERVING_{name.upper()}"


class ServingSettings(BaseServiceSettings):
    """The config follower, the assign endpoints and the exposure sender.

    Connection fields (``KAFKA_BOOTSTRAP_SERVERS``, ``TOPIC_PREFIX``) come from
    :class:`~shared.settings.BaseServiceSettings` without a prefix; the fields below read
    ``ABFLOW_SERVING_<NAME>`` (and may be passed by field name in code).
    """

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    replica_id: str = Field(
        default_factory=_default_replica_id,
        min_length=1,
        max_length=200,
        validation_alias=_env("replica_id"),
        description="Name of this replica, carried by its exposure events.",
    )
    # --- config follower -------------------------------------------------------------
    readiness_timeout_s: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        validation_alias=_env("readiness_timeout_s"),
        description=(
            "How long start-up waits for the initial read of the config topic. After it the "
            "service starts anyway, not ready (HTTP 503 on assign) until the read completes."
        ),
    )
    probe_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        validation_alias=_env("probe_interval_s"),
        description="How often the follower asks Kafka for the config topic's end offsets.",
    )
    probe_timeout_s: float = Field(
        default=3.0,
        gt=0,
        le=60,
        validation_alias=_env("probe_timeout_s"),
        description="A probe that takes longer marks Kafka unreachable.",
    )
    stale_after_s: float = Field(
        default=10.0,
        gt=0,
        validation_alias=_env("stale_after_s"),
        description=(
            "Health is degraded when the snapshot was last confirmed current (caught up with "
            "the topic's end) longer ago than this."
        ),
    )
    reconnect_backoff_s: float = Field(
        default=0.5, gt=0, le=60, validation_alias=_env("reconnect_backoff_s")
    )
    reconnect_backoff_max_s: float = Field(
        default=10.0, gt=0, le=600, validation_alias=_env("reconnect_backoff_max_s")
    )
    create_topics: bool = Field(
        default=True,
        validation_alias=_env("create_topics"),
        description="Create the config and exposures topics at start when they are missing.",
    )
    # --- exposures -------------------------------------------------------------------
    exposures_enabled: bool = Field(
        default=True,
        validation_alias=_env("exposures_enabled"),
        description="Emit an exposure event for each assignment of a unit into an experiment.",
    )
    exposures_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=_env("exposures_bootstrap_servers"),
        description="Kafka cluster of the exposures topic (default: KAFKA_BOOTSTRAP_SERVERS).",
    )
    exposure_buffer_size: int = Field(
        default=20_000,
        ge=1,
        le=10_000_000,
        validation_alias=_env("exposure_buffer_size"),
        description="Exposures waiting to be sent; beyond it new ones are dropped (counted).",
    )
    exposure_batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        validation_alias=_env("exposure_batch_size"),
        description="Exposures handed to the producer per round.",
    )
    exposure_linger_ms: float = Field(
        default=20.0,
        ge=0,
        le=10_000,
        validation_alias=_env("exposure_linger_ms"),
        description="How long the sender waits for a batch to fill once one exposure is buffered.",
    )
    exposure_dedupe_window_s: float = Field(
        default=300.0,
        ge=0,
        validation_alias=_env("exposure_dedupe_window_s"),
        description=(
            "A replica skips an exposure of the same (experiment, variant, unit) it emitted less "
            "than this many seconds ago; 0 disables the dedupe."
        ),
    )
    exposure_dedupe_max_entries: int = Field(
        default=100_000,
        ge=1,
        validation_alias=_env("exposure_dedupe_max_entries"),
        description="Bound of the dedupe memory (oldest entries are forgotten first).",
    )
    exposure_flush_timeout_s: float = Field(
        default=5.0,
        ge=0,
        validation_alias=_env("exposure_flush_timeout_s"),
        description="At shutdown, how long buffered exposures may take to be sent.",
    )

    @property
    def config_topic(self) -> str:
        return CONFIG.full_name(self.topic_prefix)

    @property
    def exposures_topic(self) -> str:
        return EXPOSURES.full_name(self.topic_prefix)

    @property
    def exposures_bootstrap(self) -> str:
        return self.exposures_bootstrap_servers or self.kafka_bootstrap_servers
