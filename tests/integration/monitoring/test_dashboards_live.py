"""Every PromQL expression of every Grafana panel returns data from a real Prometheus.

Starts Debian's Prometheus with the project's local configuration (targets = the
running stack's services) on a free port and a temporary storage directory, drives demo
traffic through the stack for a while (simulator, API and console reads, one invalid
execution event for the dead-letter panels), then runs each panel's expression (and each
template variable's query) with the variables on "All" until every one returns at least
one series with a finite value. Needs the running stack with demo data (``e2e``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .dashboards import (
    dashboard_files,
    instantiate,
    label_values_query,
    load,
    targets,
    variables,
)
from .live import Traffic, finite_values, prometheus, query, running_stack

pytestmark = pytest.mark.e2e

JOBS = ("assignment", "analysis", "aggregator", "console")
DEADLINE_S = 150


def _checks() -> list[tuple[str, str]]:
    """(label, PromQL) for every panel target and template variable."""
    out: list[tuple[str, str]] = []
    for path in dashboard_files():
        d = load(path)
        names = variables(d)
        out += [(str(t), instantiate(t.expr, names)) for t in targets(d)]
        out += [(f"{d['title']} / variable ${n}", label_values_query(q)) for n, q in names.items()]
    return out


def test_every_dashboard_query_returns_data(tmp_path: Path) -> None:
    stack = running_stack()
    checks = _checks()
    assert len(checks) > 30
    with prometheus(stack, tmp_path) as prom, Traffic(stack, tmp_path, seconds=DEADLINE_S):
        deadline = time.monotonic() + DEADLINE_S
        # every service is scraped
        while True:
            _, result = query(prom, "up")
            up = {s["metric"].get("job"): s["value"][1] for s in result}
            if all(up.get(job) == "1" for job in JOBS) or time.monotonic() > deadline:
                break
            time.sleep(1)
        down = [job for job in JOBS if up.get(job) != "1"]
        assert not down, f"Prometheus cannot scrape {down} (up = {up})"

        pending = dict(checks)
        reasons: dict[str, str] = {}
        passed: dict[str, list[float]] = {}
        while pending and time.monotonic() < deadline:
            for label, expr in list(pending.items()):
                error, result = query(prom, expr)
                values = finite_values(result)
                if error:
                    reasons[label] = error
                elif values:
                    passed[label] = values
                    del pending[label]
                else:
                    reasons[label] = "no series" if not result else "only NaN/Inf values"
            if pending:
                time.sleep(3)
        report = "\n".join(
            f"  {label}: {reasons.get(label)}\n    {expr}" for label, expr in pending.items()
        )
        print(f"\n{len(passed)} of {len(checks)} dashboard queries returned data")
        assert not pending, (
            f"{len(pending)} of {len(checks)} dashboard queries are empty:\n{report}"
        )
