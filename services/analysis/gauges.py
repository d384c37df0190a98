"""Per-variant Prometheus gauges of the running and paused experiments.

The "Experiments by variant" Grafana dashboard (``docs/monitoring.md``) plots, per arm,
the numbers the console shows: executions (``sample_size``), success rate and mean
execution time. A background task refreshes them from PostgreSQL every
``ANALYSIS_GAUGES_INTERVAL_S`` (two queries whatever the traffic: the exposure count is
skipped, the gauges do not need the SRM check) and removes the series of experiments that
are no longer running or paused, so a scrape never waits on the database.
Labels: ``experiment`` = experiment key, ``variant`` = variant key, ``control`` =
``"true"``/``"false"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from services.analysis import repository as repo
from services.analysis.database import DatabaseComponent
from shared.results import load_experiment_results

log = logging.getLogger(__name__)

__all__ = ["VariantGauges"]

LABELS = ("experiment", "variant", "control")


class VariantGauges:
    """Component owning the refresh task (``interval_s = 0``: no task, no series)."""

    name = "variant_gauges"

    def __init__(
        self, database: DatabaseComponent, registry: CollectorRegistry, interval_s: float
    ) -> None:
        self._database = database
        self.interval_s = interval_s
        self.executions = Gauge(
            "abflow_analysis_variant_executions",
            "Executions of an experiment arm (all hours, all partitions)",
            LABELS,
            registry=registry,
        )
        self.success_rate = Gauge(
            "abflow_analysis_variant_success_rate",
            "Success rate of an experiment arm (0..1)",
            LABELS,
            registry=registry,
        )
        self.execution_time = Gauge(
            "abflow_analysis_variant_execution_time_mean_ms",
            "Mean execution time of an experiment arm in milliseconds",
            LABELS,
            registry=registry,
        )
        self._series: dict[Gauge, set[tuple[str, str, str]]] = {
            g: set() for g in (self.executions, self.success_rate, self.execution_time)
        }
        self._task: asyncio.Task[None] | None = None
        self.last_refresh: datetime | None = None
        self.last_error: str | None = None

    async def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="analysis-variant-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def health(self) -> dict[str, Any]:
        return {
            "status": "degraded" if self.last_error else "ok",
            "ready": True,
            "last_refresh": self.last_refresh.isoformat() if self.last_refresh else None,
            "series": len(self._series[self.executions]),
            **({"error": self.last_error} if self.last_error else {}),
        }

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep refreshing; health shows the error
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("variant gauges refresh failed: %s", self.last_error)
            await asyncio.sleep(self.interval_s)

    async def refresh(self) -> None:
        """Set the gauges of every running or paused experiment; drop the others."""
        pool = self._database.pool
        ids = await repo.active_experiment_ids(pool)
        results = await load_experiment_results(pool, ids, exposures={i: {} for i in ids})
        seen: dict[Gauge, set[tuple[str, str, str]]] = {g: set() for g in self._series}
        for r in results:
            for v in r.variants:
                labels = (
                    r.experiment_key,
                    v.variant_key or str(v.variant_id),
                    str(v.is_control).lower(),
                )
                values = {
                    self.executions: float(v.sample_size),
                    self.success_rate: v.summary["success_rate"].mean,
                    self.execution_time: v.summary["execution_time"].mean,
                }
                for gauge, value in values.items():
                    if value is not None:
                        gauge.labels(*labels).set(value)
                        seen[gauge].add(labels)
        for gauge, old in self._series.items():
            for labels in old - seen[gauge]:
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)
        self._series = seen
        self.last_refresh = datetime.now(UTC)
        self.last_error = None
