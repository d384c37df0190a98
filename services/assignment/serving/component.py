"""The serving component: snapshot + config follower + exposure sink, one lifecycle."""

from __future__ import annotations

import random
from typing import Any

from prometheus_client import CollectorRegistry

from .config_follower import ConfigFollower
from .dead_letters import DeadLetterSink
from .exposures import ExposureSink
from .metrics import ServingMetrics
from .settings import ServingSettings
from .snapshot import Snapshot

__all__ = ["ServingComponent"]


class ServingComponent:
    """What ``POST /api/v1/assign`` needs, stored as ``app.state.serving``.

    :meth:`start` starts the exposure sender, then the config follower, and returns once
    the config topic was read to its end (or after ``readiness_timeout_s``: the component
    is then not ready and the assign endpoints answer 503 until the read completes).
    """

    name = "serving"

    def __init__(self, settings: ServingSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.metrics = ServingMetrics(registry)
        self.snapshot = Snapshot(settings.replica_id, self.metrics)
        self.exposures = ExposureSink(settings, self.metrics)
        self.dead_letters = DeadLetterSink(settings)
        self.follower = ConfigFollower(
            settings, self.snapshot, self.metrics, dead_letters=self.dead_letters
        )
        self.rng = random.Random()
        self.metrics.bind(
            buffer_depth=lambda: len(self.exposures.buffer),
            buffer_capacity=settings.exposure_buffer_size,
            snapshot_age=lambda: self.follower.snapshot_age() or 0.0,
            schemas=lambda: len(self.snapshot),
        )

    @property
    def ready(self) -> bool:
        return self.follower.loaded

    async def start(self) -> None:
        await self.exposures.start()
        await self.dead_letters.start()
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()
        await self.dead_letters.stop()
        await self.exposures.stop()

    def health(self) -> dict[str, Any]:
        config = self.follower.health()
        exposures = self.exposures.health()
        status = config["status"]
        if status == "ok" and exposures["status"] != "ok":
            status = "degraded"
        return {
            "status": status,
            "ready": config["ready"],
            "replica": self.settings.replica_id,
            "kafka": config["kafka"],
            "schemas": config["schemas"],
            "snapshot_age_s": config["snapshot_age_s"],
            "config": config,
            "exposures": exposures,
            "dead_letters": self.dead_letters.health(),
        }
