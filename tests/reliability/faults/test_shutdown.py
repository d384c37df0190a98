"""SIGTERM of each service: a clean, quick exit that keeps what was acknowledged.

Each service runs here as a child process of the test (so that its exit code can be
read), configured like the private stack's (same Kafka, PostgreSQL and API keys, the
same command line as ``deploy/local/stack.py``), while traffic reaches it; then SIGTERM:

- it exits with code 0, no traceback in its log, within ``EXIT_WITHIN_S`` seconds (the
  aggregator: its shutdown timeout + ``AGGREGATOR_EXIT_MARGIN_S``); the time is reported;
- assignment: every exposure of an assignment answered before the signal is in Kafka
  (the exposure producer was flushed);
- aggregator (flush interval 60 s, so nothing is committed before the signal): after
  the exit its offsets in ``aggregator_offsets`` reach the end of the topic and the
  aggregates equal the exact sums of the distinct events read (the last flush ran);
- analysis, console: requests in flight are answered, then the process exits.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from deploy.demo.scenario import create_scenario
from shared.kafka import ensure_topics
from shared.topics import EXECUTIONS, EXPOSURES
from tests.integration.aggregator.generator import check_database, expected, make_stream
from tests.ports import free_port
from tests.reliability.faults.stack import PrivateStack
from tests.reliability.faults.streams import end_offsets, produce_through_faults
from tests.reliability.harness import ServiceProcess, read_topic

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

EXIT_WITHIN_S = 10.0
"""Bound on the exit of a uvicorn service after SIGTERM."""
AGGREGATOR_SHUTDOWN_TIMEOUT_S = 20.0
"""``AGGREGATOR_SHUTDOWN_TIMEOUT_S`` of the workers whose stop must not be cut short:
twice the default, so that a cut-short stop means a hang, not a slow machine."""
AGGREGATOR_EXIT_MARGIN_S = 30.0
"""Added to the worker's shutdown timeout for its exit bound: the drain (last flush,
commit, leaving the group) and the wait for Faust's group join (itself bounded by the
timeout) come before the timed part of the stop, then the interpreter exits."""
UVICORN_CLEAN = -signal.SIGTERM
"""uvicorn (0.29+) shuts down gracefully on SIGTERM (lifespan shutdown: components
stopped, producers flushed, pools closed), then re-raises the signal so that the exit
status says what stopped it: a clean stop of a uvicorn service is "terminated by
SIGTERM" (shell status 143), not 0."""


def _uvicorn(name: str, app: str, stack: PrivateStack, log_dir: Path, **env: str) -> ServiceProcess:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", "--no-access-log"]
    return ServiceProcess(name, argv, {**stack.service_env(), **env}, log_dir, port=port)


def _terminate(proc: ServiceProcess, within: float = EXIT_WITHIN_S) -> tuple[int | None, float]:
    """SIGTERM; (exit code, seconds to exit); SIGKILL 30 s past ``within`` (then the code
    is -9), so that a slow exit is measured rather than killed at the bound."""
    started = time.monotonic()
    code = proc.stop(timeout=within + 30.0)
    return code, time.monotonic() - started


def _assert_clean(
    proc: ServiceProcess,
    code: int | None,
    took: float,
    clean: int = 0,
    within: float = EXIT_WITHIN_S,
) -> None:
    log = proc.log_text()
    assert code == clean, f"{proc.name} exited with {code} after SIGTERM; log:\n{proc.tail()}"
    assert took <= within, (
        f"{proc.name} took {took:.1f}s to exit (bound {within:.0f}s); log:\n{proc.tail()}"
    )
    assert "Traceback" not in log, f"{proc.name} logged a traceback:\n{proc.tail(80)}"


async def test_sigterm_assignment_flushes_exposures(
    private_stack: PrivateStack, tmp_path: Path, reliability_summary: list[str]
) -> None:
    stack = private_stack
    async with stack.client("admin") as admin:
        scenario = await create_scenario(admin, suffix=f"sigterm-{uuid.uuid4().hex[:6]}")
    # a second replica: same topics and database, the outbox relay left to the stack's one
    proc = _uvicorn(
        "assignment",
        "services.assignment.main:app",
        stack,
        tmp_path,
        ABFLOW_CONTROL_RELAY_ENABLED="false",
        ABFLOW_SERVING_REPLICA_ID="sigterm-test",
    ).start()
    try:
        await proc.wait_http("/health/ready", timeout=60)
        acked: set[str] = set()
        async with httpx.AsyncClient(
            base_url=proc.url, timeout=10.0, headers=stack.headers("client")
        ) as client:
            deadline = time.monotonic() + 30
            while True:
                r = await client.post(
                    "/api/v1/assign", json={"schema": scenario.schema_key, "unit_id": "probe"}
                )
                if r.status_code == 200 and r.json()["in_experiment"]:
                    break
                assert time.monotonic() < deadline, r.text
                await asyncio.sleep(0.2)
            tag = uuid.uuid4().hex[:8]

            async def assign(i: int) -> None:
                unit = f"sig-{tag}-{i}"
                resp = await client.post(
                    "/api/v1/assign", json={"schema": scenario.schema_key, "unit_id": unit}
                )
                if resp.status_code == 200 and resp.json()["in_experiment"]:
                    acked.add(unit)

            for start in range(0, 2_000, 100):
                await asyncio.gather(*(assign(i) for i in range(start, start + 100)))
        code, took = await asyncio.to_thread(_terminate, proc)
    finally:
        proc.stop()
    _assert_clean(proc, code, took, UVICORN_CLEAN)
    assert len(acked) == 2_000
    records = await read_topic(stack.bootstrap, EXPOSURES.full_name(), timeout=20)
    exposed = set()
    for rec in records:
        with_unit = orjson.loads(rec.value)
        if with_unit.get("experiment_id") == scenario.experiment_id:
            exposed.add(with_unit["unit_id"])
    missing = acked - exposed
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged exposures not in Kafka"
    line = (
        f"SIGTERM assignment: graceful exit (uvicorn: status 143) in {took:.1f}s, {len(acked):,} exposures acknowledged "
        "just before the signal, all in Kafka, no traceback"
    )
    print("\n" + line)
    reliability_summary.append(line)


def _aggregator(stack: PrivateStack, tmp_path: Path, prefix: str, **env: str) -> ServiceProcess:
    port = free_port()
    return ServiceProcess(
        "aggregator",
        [sys.executable, "-m", "services.aggregator.main"],
        {
            **stack.service_env(),
            "TOPIC_PREFIX": prefix,
            "AGGREGATOR_WEB_PORT": str(port),
            "AGGREGATOR_DATA_DIR": str(tmp_path / "aggregator-data"),
            **env,
        },
        tmp_path,
        port=port,
    )


@pytest.mark.parametrize("stop", ["graceful", "bounded"])
async def test_sigterm_aggregator_commits_its_last_flush(
    private_stack: PrivateStack, tmp_path: Path, reliability_summary: list[str], stop: str
) -> None:
    """``bounded``: a shutdown timeout of 10 ms, so the process exits (0) as soon as the
    executions pipeline has drained, Faust's stop cut short: the last flush comes first.
    ``graceful``: ``AGGREGATOR_SHUTDOWN_TIMEOUT_S``, which the stop must not reach."""
    stack = private_stack
    prefix = f"sig{uuid.uuid4().hex[:8]}."
    group = f"sigterm-{uuid.uuid4().hex[:8]}"
    offsets_group = f"{group}.executions"  # the executions consumer's group
    await ensure_topics(stack.bootstrap, prefix=prefix)
    # explicit, not the settings' default: "not cut short" must mean "did not hang"
    timeout_s = 0.01 if stop == "bounded" else AGGREGATOR_SHUTDOWN_TIMEOUT_S
    within = timeout_s + AGGREGATOR_EXIT_MARGIN_S
    proc = _aggregator(
        stack,
        tmp_path,
        prefix,
        AGGREGATOR_GROUP_ID=group,
        AGGREGATOR_FLUSH_INTERVAL_S="60",
        AGGREGATOR_FLUSH_MAX_EVENTS="1000000",
        AGGREGATOR_SHUTDOWN_TIMEOUT_S=f"{timeout_s:g}",
    ).start()
    stream = make_stream(3_000, seed=random.randrange(1 << 30), too_late=0, id_prefix=prefix)
    topic = EXECUTIONS.full_name(prefix)
    try:
        await proc.wait_http("/health/ready", timeout=90)
        await produce_through_faults(
            stack.bootstrap, topic, [(r.key, r.value) for r in stream.records], rate=50_000
        )
        ends = await end_offsets(stack.bootstrap, topic)
        # wait until the worker holds every record (read, not yet flushed)
        async with httpx.AsyncClient(base_url=proc.url, timeout=3.0) as client:
            deadline = time.monotonic() + 60
            while True:
                text = (await client.get("/metrics")).text
                pending = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("abflow_aggregator_pending_records")
                )
                if pending >= sum(ends.values()):
                    break
                assert time.monotonic() < deadline, f"only {pending} records read"
                await asyncio.sleep(0.2)
        conn = await asyncpg.connect(stack.database_url)
        try:
            before = await conn.fetchval(
                "SELECT coalesce(sum(next_offset), 0) FROM aggregator_offsets "
                "WHERE consumer_group = $1 AND topic = $2",
                offsets_group,
                topic,
            )
        finally:
            await conn.close()
        code, took = await asyncio.to_thread(_terminate, proc, within)
    finally:
        proc.stop()
    _assert_clean(proc, code, took, within=within)
    cut_short = "exiting now: the executions were committed" in proc.log_text()
    assert cut_short == (stop == "bounded"), proc.tail()
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM aggregator_offsets "
            "WHERE consumer_group = $1 AND topic = $2",
            offsets_group,
            topic,
        )
        committed = {r["partition"]: r["next_offset"] for r in rows}
        assert all(committed.get(p, 0) >= end for p, end in ends.items()), (committed, ends)
        errors = await check_database(conn, stream, expected(stream))
    finally:
        await conn.close()
    assert not errors, "\n".join(errors[:20])
    line = (
        f"SIGTERM aggregator ({stop} stop, shutdown timeout {timeout_s:g}s): exit 0 in "
        f"{took:.1f}s; {sum(ends.values()):,} records read "
        f"and unflushed before the signal (committed before: {before}), all committed "
        "by the last flush, aggregates exact, no traceback"
    )
    print("\n" + line)
    reliability_summary.append(line)


async def test_sigterm_aggregator_during_start_up(
    private_stack: PrivateStack, tmp_path: Path, reliability_summary: list[str]
) -> None:
    """SIGTERM while the worker starts: once its web server answers but before both of
    its consumers have joined their groups (``/health/ready`` still 503), then at the
    moment it turns ready. Each time: exit 0 within the shutdown timeout +
    ``AGGREGATOR_EXIT_MARGIN_S``, no traceback, and the stop not cut short by
    ``AGGREGATOR_SHUTDOWN_TIMEOUT_S`` (a SIGTERM during Faust's group join used to
    deadlock its consumer thread's stop)."""
    stack = private_stack
    prefix = f"sup{uuid.uuid4().hex[:8]}."
    await ensure_topics(stack.bootstrap, prefix=prefix)
    seen: list[str] = []
    within = AGGREGATOR_SHUTDOWN_TIMEOUT_S + AGGREGATOR_EXIT_MARGIN_S
    for moment in ("starting", "starting", "ready", "ready"):
        group = f"startup-{uuid.uuid4().hex[:8]}"
        proc = _aggregator(
            stack,
            tmp_path,
            prefix,
            AGGREGATOR_GROUP_ID=group,
            # explicit, not the settings' default: "cut short" must mean a hang
            AGGREGATOR_SHUTDOWN_TIMEOUT_S=f"{AGGREGATOR_SHUTDOWN_TIMEOUT_S:g}",
        ).start()
        try:
            deadline = time.monotonic() + 90
            async with httpx.AsyncClient(base_url=proc.url, timeout=2.0) as client:
                while True:
                    assert proc.alive(), proc.tail()
                    assert time.monotonic() < deadline, f"never {moment}:\n{proc.tail()}"
                    try:
                        status = (await client.get("/health/ready")).status_code
                    except httpx.HTTPError:
                        status = None
                    if (moment == "starting" and status == 503) or (
                        moment == "ready" and status == 200
                    ):
                        break
                    await asyncio.sleep(0.02)
            code, took = await asyncio.to_thread(_terminate, proc, within)
        finally:
            proc.stop()
        _assert_clean(proc, code, took, within=within)
        assert "exiting now" not in proc.log_text(), f"stop cut short:\n{proc.tail()}"
        seen.append(f"{moment} {took:.1f}s")
    line = (
        f"SIGTERM aggregator during start-up (shutdown timeout "
        f"{AGGREGATOR_SHUTDOWN_TIMEOUT_S:g}s): exit 0 each time ({', '.join(seen)})"
    )
    print("\n" + line)
    reliability_summary.append(line)


@pytest.mark.parametrize(
    ("service", "app", "path", "scope"),
    [
        ("analysis", "services.analysis.main:app", "/api/v1/experiments/statuses", "read"),
        ("console", "services.console.main:app", "/console/experiments", "read"),
    ],
)
async def test_sigterm_http_service(
    private_stack: PrivateStack,
    tmp_path: Path,
    reliability_summary: list[str],
    service: str,
    app: str,
    path: str,
    scope: str,
) -> None:
    proc = _uvicorn(service, app, private_stack, tmp_path).start()
    statuses: list[int] = []
    try:
        await proc.wait_http("/health", timeout=60)
        async with httpx.AsyncClient(
            base_url=proc.url, timeout=10.0, headers=private_stack.headers(scope)
        ) as client:
            for _ in range(5):
                statuses.append((await client.get(path)).status_code)

            async def busy() -> None:
                # requests while the signal arrives: answered, or refused once closed
                with_errors = 0
                while proc.alive():
                    try:
                        statuses.append((await client.get(path)).status_code)
                    except httpx.TransportError:
                        with_errors += 1
                        await asyncio.sleep(0.05)

            load = asyncio.create_task(busy())
            await asyncio.sleep(0.5)
            code, took = await asyncio.to_thread(_terminate, proc)
            await load
    finally:
        proc.stop()
    _assert_clean(proc, code, took, UVICORN_CLEAN)
    assert all(200 <= s < 400 for s in statuses), f"{service}: statuses {set(statuses)}"
    line = (
        f"SIGTERM {service}: graceful exit (status 143) in {took:.1f}s with requests in flight "
        f"({len(statuses)} answered {sorted(set(statuses))}), no traceback"
    )
    print("\n" + line)
    reliability_summary.append(line)
