#!/usr/bin/env python3
"""Render the loopback variant of ``prometheus.yml`` for the local stack (no Docker).

    python3 deploy/prometheus/render_local.py              # rewrite prometheus.local.yml (default ports)
    python3 deploy/prometheus/render_local.py --out FILE   # FILE, targets from the environment
    python3 deploy/prometheus/render_local.py --check      # exit 1 if prometheus.local.yml is stale

``prometheus.yml`` (docker compose) is the source: each ``targets: ["<job>:<port>"]`` of
a platform job becomes ``127.0.0.1:<port>``, or the host and port of the service's URL in
the environment when set (``ASSIGNMENT_URL``, ``ANALYSIS_URL``, ``AGGREGATOR_URL``,
``CONSOLE_URL``, as in ``.stack/env``) when writing to ``--out``; the committed
``prometheus.local.yml`` always has the default ports 18001-18004. The Prometheus
self-scrape target becomes ``PROMETHEUS_LISTEN`` (default 127.0.0.1:19090).

Standard library only (it runs before the virtualenv exists), like deploy/local/stack.py.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "prometheus.yml"
LOCAL = HERE / "prometheus.local.yml"
HOST = "127.0.0.1"
JOBS = ("assignment", "analysis", "aggregator", "console")
URL_VARS = {job: f"{job.upper()}_URL" for job in JOBS}
DEFAULT_PROMETHEUS = f"{HOST}:19090"

_JOB = re.compile(r"^\s*-\s*job_name:\s*([A-Za-z0-9_-]+)\s*$")
_TARGET = re.compile(
    r'^(?P<head>\s*-\s*targets:\s*\[)"(?P<host>[^":]+):(?P<port>\d+)"(?P<tail>\]\s*)$'
)

HEADER = (
    "# GENERATED from prometheus.yml by render_local.py: loopback targets for the local\n"
    "# stack. Edit prometheus.yml, then run `python3 deploy/prometheus/render_local.py`.\n"
)


class RenderError(Exception):
    """A problem the user can act on; printed as one line."""


def _host_port(url: str, var: str) -> str:
    parts = urlsplit(url if "//" in url else f"//{url}")
    if not parts.hostname or not parts.port:
        raise RenderError(f"{var}={url!r}: expected a URL with a host and a port")
    return f"{parts.hostname}:{parts.port}"


def target_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """``job -> host:port`` from the service URLs in ``env`` (only those set)."""
    out = {job: _host_port(env[var], var) for job, var in URL_VARS.items() if env.get(var)}
    out["prometheus"] = env.get("PROMETHEUS_LISTEN", DEFAULT_PROMETHEUS)
    return out


def render(source: str, overrides: Mapping[str, str]) -> str:
    """The loopback configuration: every single-target job's target rewritten."""
    lines: list[str] = []
    job: str | None = None
    seen: set[str] = set()
    for line in source.splitlines():
        m = _JOB.match(line)
        if m:
            job = m.group(1)
        t = _TARGET.match(line)
        if t and job is not None:
            target = overrides.get(job) or f"{HOST}:{t.group('port')}"
            line = f'{t.group("head")}"{target}"{t.group("tail")}'
            seen.add(job)
        lines.append(line)
    missing = [j for j in JOBS if j not in seen]
    if missing:
        raise RenderError(f"prometheus.yml has no single-target job for {', '.join(missing)}")
    body = "\n".join(lines).rstrip() + "\n"
    # drop the source's own header comment (it describes the compose file)
    body = body[body.index("global:") :]
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="write here (default: prometheus.local.yml)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when prometheus.local.yml is stale"
    )
    args = parser.parse_args(argv)
    try:
        env = dict(os.environ) if args.out is not None else {}
        text = render(SOURCE.read_text(), target_overrides(env))
        if args.check:
            if not LOCAL.exists() or LOCAL.read_text() != text:
                print(
                    f"error: {LOCAL} is stale: run python3 {Path(__file__).name}", file=sys.stderr
                )
                return 1
            return 0
        out = args.out or LOCAL
        out.write_text(text)
        print(out)
        return 0
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
