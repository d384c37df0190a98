"""A short run of ``bench/sustained_load.py`` on the private stack.

Assignment traffic at 80% of the measured maximum plus 500 execution events/s for
``SUSTAINED_S`` seconds (10; ``RELIABILITY_LONG=1``: 60): no failed request, no failed
event, every event aggregated afterwards, every service still running with its memory
within a leak bound of its start (``RSS_GROWTH`` x start + ``RSS_SLACK_KIB``; the values
are reported). The p99 latency against the unloaded p99 is reported (the 2x target of
the issue is the benchmark's to judge, on a machine that is not shared: see
docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.reliability.faults.stack import LONG, ROOT, PrivateStack

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

SUSTAINED_S = 60 if LONG else 10
RSS_GROWTH = 1.5
RSS_SLACK_KIB = 32 * 1024
"""The RSS at the end of the sustained phase may exceed ``RSS_GROWTH`` x its start (a
sample taken after the warm-up phases: unloaded and maximum load) by ``RSS_SLACK_KIB``:
CPython and glibc rarely give memory back, and buffers (HTTP connections, the exposure
producer, the aggregator's pending batches) grow with a load that, on a shared machine,
comes in bursts. A leak of a few KiB per request (tens of thousands of them in 10 s)
still crosses it; the long version (60 s) catches a sixth of that."""


async def test_sustained_load_short(
    private_stack: PrivateStack, reliability_summary: list[str]
) -> None:
    argv = [
        sys.executable,
        str(ROOT / "bench" / "sustained_load.py"),
        "--stack-dir",
        str(private_stack.directory),
        "--duration",
        str(SUSTAINED_S),
        "--max-duration",
        "4",
        "--idle-duration",
        "4",
        "--events",
        "500",
    ]
    proc = await asyncio.to_thread(
        subprocess.run, argv, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    print("\n" + "\n".join(lines[:-1]))
    assert result["errors"] == 0, result
    assert result["event_errors"] == 0, result
    assert result["aggregator_caught_up_s"] is not None, "events not all aggregated"
    for name, rss in result["rss_kib"].items():
        # None: /proc/<pid>/status unreadable at the end, i.e. the service is gone
        assert rss["start"] and rss["end"], f"{name}: no RSS sample (process gone?): {rss}"
        allowed = rss["start"] * RSS_GROWTH + RSS_SLACK_KIB
        assert rss["end"] <= allowed, (
            f"{name} RSS grew from {rss['start'] // 1024} to {rss['end'] // 1024} MiB "
            f"(max {rss['max'] // 1024} MiB; bound {allowed // 1024:.0f} MiB): {rss}"
        )
    reliability_summary.append(
        f"sustained load ({SUSTAINED_S}s): max {result['max_rps']:,.0f} req/s, "
        f"{result['requests']:,} requests at {result['rate_rps']:,.0f}/s + "
        f"{result['events_sent']:,} events, 0 errors, p99 {result['loaded']['p99_ms']} ms vs "
        f"{result['unloaded']['p99_ms']} ms unloaded ({result['p99_ratio']}x), RSS "
        + ", ".join(
            f"{k} {v['start'] // 1024}->{v['end'] // 1024} MiB (max {v['max'] // 1024})"
            for k, v in result["rss_kib"].items()
        )
    )
