"""``make demo``: create an experiment with a planted improvement, drive it with the
simulator, wait for the analysis to catch up, and print the report.

Needs a running stack (``make up`` writes ``.stack/env`` with ASSIGNMENT_URL,
ANALYSIS_URL, GATEWAY_URL, KAFKA_BOOTSTRAP_SERVERS and the API keys ADMIN_API_KEY,
READ_API_KEY, CLIENT_API_KEY; the environment wins over the file). The scenario is
created with the admin key, the simulator assigns with the client key, the report is
read with the read key. Control and analysis calls go through the gateway when it answers, else to the
services directly. Exit status: 0 when the report recommends adopting the planted
treatment and the SRM check passes; 1 when it does not; 2 on a setup or API error; 3
when the analysis did not catch up in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from services.simulator import BehaviourSet, ProgressBar, SimulationConfig, run_simulation
from services.simulator.summary import format_summary
from shared.client import AbflowClient, AbflowClientError, AssignedConfig, SchemaFallback

from .report import Status, merge_performance, parse_status, render_report
from .scenario import BASE_DEFINITION, DemoScenario, ScenarioError, create_scenario

ROOT = Path(__file__).resolve().parents[2]
BEHAVIOUR_FILE = Path(__file__).resolve().parent / "behaviour.json"

__all__ = ["load_env", "main"]


def _bearer(env: Mapping[str, str], var: str) -> dict[str, str]:
    """``Authorization: Bearer`` with the key in ``var`` (none when it is not set)."""
    key = env.get(var, "")
    return {"Authorization": f"Bearer {key}"} if key else {}


def say(msg: str) -> None:
    sys.stdout.write(f"[demo] {msg}\n")
    sys.stdout.flush()


def load_env(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``export K=V`` lines of ``path`` (if it exists), overridden by ``environ``."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip().strip("'\"")
    values.update({k: v for k, v in environ.items() if v})
    return values


async def _healthy(http: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await http.get(url, timeout=2)).status_code == 200
    except httpx.HTTPError:
        return False


async def _wait_healthy(http: httpx.AsyncClient, urls: Sequence[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while not await _healthy(http, url):
            if time.monotonic() > deadline:
                raise ScenarioError(f"{url} does not answer: is the stack up (`make up`)?")
            await asyncio.sleep(0.5)


async def _wait_assignable(
    client: AbflowClient, s: DemoScenario, probe_unit: str, timeout: float
) -> float:
    """Until the assignment service serves the new experiment (its config travels
    through the outbox and the config topic); returns the seconds waited. The probe is
    a unit the simulation runs anyway, so it adds no exposure without an execution."""
    t0 = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - t0 < timeout:
        client.clear_cache()
        try:
            a = await client.assign(s.schema_key, probe_unit)
            if a.in_experiment and str(a.experiment_id) == s.experiment_id:
                return time.monotonic() - t0
            last = f"answer {a.reason!r}, experiment {a.experiment_id}"
        except AbflowClientError as exc:
            last = str(exc)
        await asyncio.sleep(0.25)
    raise ScenarioError(f"the assignment service does not serve the experiment yet ({last})")


async def _fetch_status(http: httpx.AsyncClient, experiment_id: str) -> dict[str, Any]:
    resp = await http.get(f"/api/v1/experiments/{experiment_id}/status", timeout=10)
    resp.raise_for_status()
    data = resp.json()
    if not isinstance(data, dict):
        raise ValueError("status is not a JSON object")
    return data


async def _wait_caught_up(
    http: httpx.AsyncClient, experiment_id: str, expected: int, timeout: float
) -> tuple[Status | None, float, str]:
    bar = ProgressBar(expected, "analysed")
    t0 = time.monotonic()
    status: Status | None = None
    problem = ""
    try:
        while time.monotonic() - t0 < timeout:
            try:
                status = parse_status(await _fetch_status(http, experiment_id))
                problem = ""
            except (httpx.HTTPError, ValueError) as exc:
                problem = f"status not available: {exc!r}"
            n = status.total_n if status else None
            bar.set(n or 0, problem[:60])
            if n is not None and n >= expected:
                return status, time.monotonic() - t0, ""
            await asyncio.sleep(1.0)
    finally:
        bar.close()
    n = status.total_n if status else None
    return status, time.monotonic() - t0, problem or f"analysed {n} of {expected} events"


async def _add_percentiles(http: httpx.AsyncClient, status: Status, schema_id: str) -> None:
    """The experiment status has no percentiles: take them from the schema's performance
    summary (each demo run has its own schema, so its variants are the arms)."""
    try:
        resp = await http.get(
            f"/api/v1/performance/schemas/{schema_id}/summary", params={"period_days": 1}
        )
        resp.raise_for_status()
        summary = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        say(f"no performance summary for the percentiles: {exc!r}")
        return
    if isinstance(summary, dict):
        merge_performance(status, summary)


def _console_url(env: Mapping[str, str], gateway: str | None, experiment_id: str) -> str:
    """The Experiments page, through the gateway (the console calls the APIs on its own
    origin) when there is one, else at CONSOLE_URL."""
    base = gateway or env.get("CONSOLE_URL", "").rstrip("/")
    if not base:
        return "(no GATEWAY_URL or CONSOLE_URL in .stack/env)"
    page = base if base.endswith("/console/experiments") else f"{base}/console/experiments"
    return f"{page}#experiment-{experiment_id}"


def _links(
    env: Mapping[str, str], gateway: str | None, experiment_id: str
) -> list[tuple[str, str]]:
    assignment, analysis = env.get("ASSIGNMENT_URL", ""), env.get("ANALYSIS_URL", "")
    api = gateway or analysis
    links = [
        (
            "API docs",
            f"{gateway}/docs  (per service: {gateway}/docs/assignment, {gateway}/docs/analysis)"
            if gateway
            else f"{assignment}/docs, {analysis}/docs",
        ),
        ("This experiment", f"{api}/api/v1/experiments/{experiment_id}/status"),
        ("All experiments", f"{api}/api/v1/experiments/statuses"),
        ("Console", _console_url(env, gateway, experiment_id)),
    ]
    metrics = [
        f"{env[k]}/metrics"
        for k in ("ASSIGNMENT_URL", "ANALYSIS_URL", "AGGREGATOR_URL")
        if env.get(k)
    ]
    links.append(("Metrics", ", ".join(metrics) or "n/a"))
    for key, name in (("PROMETHEUS_URL", "Prometheus"), ("GRAFANA_URL", "Grafana")):
        if env.get(key):
            links.append((name, env[key]))
    return links


def _verify(status: Status) -> list[str]:
    """The demo's expectations; an empty list when all hold."""
    failures = []
    if status.recommendation != "adopt_comparison":
        failures.append(f"recommendation is {status.recommendation!r}, not 'adopt_comparison'")
    if status.winner is not None and status.label(status.winner) != "treatment":
        failures.append(f"winner is {status.label(status.winner)!r}, not 'treatment'")
    srm = status.srm or {}
    if srm.get("is_mismatch"):
        failures.append(f"sample ratio mismatch flagged (p = {srm.get('p_value')})")
    return failures


async def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The demo; ``environ`` overrides the env file (``os.environ`` from :func:`main`)."""
    env = load_env(Path(args.env_file), environ)
    assignment_url = env.get("ASSIGNMENT_URL", "http://127.0.0.1:18001").rstrip("/")
    analysis_url = env.get("ANALYSIS_URL", "http://127.0.0.1:18002").rstrip("/")
    gateway = env.get("GATEWAY_URL", "").rstrip("/") or None
    kafka = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    async with httpx.AsyncClient(timeout=10) as probe:
        await _wait_healthy(
            probe, [f"{assignment_url}/health", f"{analysis_url}/health"], args.start_timeout
        )
        if gateway and not await _healthy(probe, f"{gateway}/health"):
            say(f"gateway {gateway} does not answer; talking to the services directly")
            gateway = None
    control_base = gateway or assignment_url
    analysis_base = gateway or analysis_url
    say(f"control API {control_base}, analysis {analysis_base}, Kafka {kafka}")

    if not env.get("ADMIN_API_KEY"):
        say("warning: ADMIN_API_KEY is not set (see .stack/env): the control API will answer 401")
    admin = _bearer(env, "ADMIN_API_KEY")
    read = _bearer(env, "READ_API_KEY") or admin
    client_key = env.get("CLIENT_API_KEY") or env.get("ADMIN_API_KEY") or ""
    async with httpx.AsyncClient(base_url=control_base, timeout=15, headers=admin) as http:
        s = await create_scenario(http, args.suffix)
    say(
        f"created schema {s.schema_key} (id {s.schema_id}, base version {s.schema_version}), "
        f"variants control {s.control_variant_id} and treatment {s.treatment_variant_id}"
    )
    say(f"started experiment {s.experiment_key} (id {s.experiment_id}), 50/50")

    behaviours = BehaviourSet.from_file(args.behaviour_file)
    fallback = SchemaFallback(
        schema_id=uuid.UUID(s.schema_id),
        schema_version=s.schema_version,
        definition=AssignedConfig.model_validate(BASE_DEFINITION),
    )
    sim_config = SimulationConfig(
        schema=s.schema_key,
        executions=args.executions,
        rate=args.rate,
        concurrency=args.concurrency,
        seed=args.seed,
        unit_prefix=f"demo-{s.suffix}",
    )
    async with AbflowClient(
        control_base, cache_ttl=0, learn_fallbacks=False, api_key=client_key
    ) as probe_client:
        waited = await _wait_assignable(probe_client, s, sim_config.unit_id(0), args.start_timeout)
    say(f"the assignment service serves the experiment (after {waited:.1f} s)")

    say(f"simulating {args.executions:,} executions (seed {args.seed})")
    async with AbflowClient(
        control_base,
        kafka_bootstrap=kafka,
        topic_prefix=env.get("TOPIC_PREFIX", ""),
        timeout=args.assign_timeout,
        fallbacks={s.schema_key: fallback},
        api_key=client_key,
    ) as client:
        result = await run_simulation(
            client,
            sim_config,
            behaviours,
            progress=ProgressBar(args.executions, "simulate"),
        )
    sys.stdout.write(format_summary(result, behaviours, s.schema_key) + "\n")
    if result.failed:
        say(f"{result.failed} executions could not be assigned or emitted")
    expected = result.sent_in_experiment(s.experiment_id)
    outside = result.sent - expected
    if outside:
        say(f"note: {outside} executions ran outside the experiment (fallback or base)")

    say(f"waiting for the analysis to count all {expected:,} events of the experiment")
    async with httpx.AsyncClient(base_url=analysis_base, timeout=10, headers=read) as http:
        status, waited, problem = await _wait_caught_up(
            http, s.experiment_id, expected, args.wait_timeout
        )
    if status is None or problem:
        say(f"the analysis did not catch up within {args.wait_timeout:.0f} s: {problem}")
        if status is None:
            return 3
    else:
        say(f"analysis caught up {waited:.1f} s after the last event was sent")
    if any(v.p95_ms is None for v in status.variants):
        async with httpx.AsyncClient(base_url=analysis_base, timeout=10, headers=read) as http:
            await _add_percentiles(http, status, s.schema_id)
    if args.raw:
        sys.stdout.write(json.dumps(status.raw, indent=2) + "\n")
    n = status.total_n
    if n is not None and n > expected:
        say(f"warning: the analysis counts {n} events, more than the {expected} sent")
    sys.stdout.write(
        render_report(
            status,
            title=f"abflow demo report: experiment {s.experiment_key}",
            header=[
                f"Schema      {s.schema_key} (id {s.schema_id}), base version {s.schema_version}",
                f"Experiment  {s.experiment_key} (id {s.experiment_id}): control vs treatment, 50/50",
                f"Planted     treatment success {behaviours.for_arm('treatment').success_probability:.0%}"
                f" vs {behaviours.for_arm('control').success_probability:.0%}, mean time "
                f"{behaviours.for_arm('treatment').duration.mean_ms:,.0f} vs "
                f"{behaviours.for_arm('control').duration.mean_ms:,.0f} ms",
                f"Sent        {result.sent:,} executions in {result.elapsed_s:.1f} s; "
                f"analysed {f'{n:,}' if n is not None else 'n/a'}",
            ],
            links=_links(env, gateway, s.experiment_id),
        )
        + "\n"
    )
    if problem:
        return 3
    if args.no_verify:
        return 0
    failures = _verify(status)
    for f in failures:
        say(f"check failed: {f}")
    if not failures:
        say(
            "check passed: the planted treatment is recommended for adoption and the SRM check passes"
        )
    return 1 if failures else 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m deploy.demo", description=__doc__)
    p.add_argument("--executions", type=int, default=20_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--assign-timeout",
        type=float,
        default=2.0,
        help="seconds per assign attempt (generous: the demo is no latency test)",
    )
    p.add_argument("--rate", type=float, default=0.0, help="executions/s; 0 = as fast as possible")
    p.add_argument("--seed", type=int, default=20260101)
    p.add_argument(
        "--suffix", default=None, help="schema/experiment key suffix (default: time + random)"
    )
    p.add_argument("--behaviour-file", default=str(BEHAVIOUR_FILE))
    p.add_argument("--env-file", default=str(ROOT / ".stack" / "env"))
    p.add_argument("--start-timeout", type=float, default=60.0, help="seconds for services")
    p.add_argument("--wait-timeout", type=float, default=180.0, help="seconds for the analysis")
    p.add_argument("--raw", action="store_true", help="also print the status JSON")
    p.add_argument("--no-verify", action="store_true", help="exit 0 whatever the verdict")
    p.add_argument(
        "--status-file",
        default=None,
        help="only render the report of a saved status JSON (no stack needed)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.status_file:
        status = parse_status(json.loads(Path(args.status_file).read_text()))
        sys.stdout.write(render_report(status, title=f"report of {args.status_file}") + "\n")
        return 0
    try:
        return asyncio.run(run(args, os.environ))
    except ScenarioError as exc:
        say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
