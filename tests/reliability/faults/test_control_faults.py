"""The Kafka broker restarts under a stream of control API writes.

Kafka is not on the control plane's write path: a write commits the change and its
new assignment config (``config_outbox`` row) in one PostgreSQL transaction, and the
outbox relay publishes it to the config topic later. So while the broker is away:

- every control write is still acknowledged (2xx; never a 5xx, a transport error or a
  hang past the client timeout), and the outbox holds the configs the relay cannot
  publish yet;
- once the broker is back, within a bounded time, the assignment service serves the
  LAST acknowledged config (its ``revision`` in ``POST /api/v1/assign``, and the
  rollout share it decides units with), every acknowledged revision is in the outbox,
  and no outbox row is left unpublished.

The writes change the traffic allocation of an active rollout variant of a schema that
also has a running experiment (coverage 0.5, so that half of the units are decided by
the rollout); they are issued one at a time by a single client, so the last
acknowledged write is the config that must be served in the end.

While the broker is away, the assignment service (whose outbox relay was sending when the
broker shut down) must not spin: it logs fewer than ``MAX_LOG_LINES_PER_S`` lines a second.
aiokafka's producer retries its metadata update without backoff once a partition's leader
is unknown; before ``shared.kafka.backoff_metadata_failures`` that was a few thousand
reconnects, and as many log lines, a second (and with the private stack's ports then in the
kernel's ephemeral range, a reconnect could take the broker's own port and keep the broker
from starting again).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from deploy.demo.scenario import BASE_DEFINITION, DELIVERABLE_TYPE, TREATMENT_OVERRIDES
from services.assignment.control.relay import STALLED_AFTER_S
from shared.assignment.decision import rollout_seed
from shared.assignment.hashing import make_hasher_v2
from tests.reliability.faults.stack import LONG, PrivateStack
from tests.reliability.faults.streams import error_json, wait_all_ok

pytestmark = [pytest.mark.reliability, pytest.mark.faults]

CLIENT_TIMEOUT = 10.0
CATCH_UP_S = 60.0
"""Bound on the time, after the broker is back, until the last config is served and
the outbox is empty."""
MAX_LOG_LINES_PER_S = 100.0
"""Bound on the assignment service's log rate with the broker away (a reconnect loop
wrote thousands of lines a second)."""
UNITS = [f"ctl-unit-{i}" for i in range(1000)]  # one batch request (the maximum)


@dataclass(frozen=True)
class Setup:
    schema_id: str
    schema_key: str
    rollout_variant_id: str
    experiment_id: str
    revision: int  # the config revision after the experiment started


@dataclass
class Write:
    allocation: int
    started: float  # monotonic
    seconds: float
    status: int | None = None  # None: no HTTP answer
    revision: int | None = None  # config_revision acknowledged by a 2xx
    error: str | None = None


@dataclass
class Writes:
    done: list[Write] = field(default_factory=list)

    @property
    def acked(self) -> list[Write]:
        return [w for w in self.done if w.revision is not None]

    def failed(self) -> list[Write]:
        return [w for w in self.done if w.revision is None]


async def _post(admin: httpx.AsyncClient, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    resp = await admin.post(path, json=payload)
    assert resp.is_success, f"POST {path}: {resp.status_code} {resp.text[:500]}"
    body: dict[str, Any] = resp.json()
    return body


async def _create(admin: httpx.AsyncClient, suffix: str) -> Setup:
    """A schema, two experiment arms, an active rollout variant (10%) and a running
    50/50 experiment with coverage 0.5 (the other half of the units: the rollout)."""
    key = f"ctl-faults-{suffix}"
    schema = await _post(
        admin,
        "/api/v1/schemas",
        {
            "key": key,
            "name": f"Control writes through a broker restart ({suffix})",
            "deliverable_type": DELIVERABLE_TYPE,
            "definition": BASE_DEFINITION,
        },
    )
    schema_id = str(schema["id"])
    version = int(schema.get("current_version") or 1)
    ids: dict[str, str] = {}
    for variant_key, extra, allocation in (
        ("control", {}, 0),
        ("treatment", TREATMENT_OVERRIDES, 0),
        ("rollout", {"config_overrides": {"config": {"model": "rollout"}}}, 10),
    ):
        body = await _post(
            admin,
            "/api/v1/versions/variants",
            {
                "schema_id": schema_id,
                "base_version": version,
                "variant_key": variant_key,
                "variant_name": variant_key,
                "traffic_allocation": allocation,
                **extra,
            },
        )
        ids[variant_key] = str(body["id"])
    await _post(admin, f"/api/v1/versions/variants/{ids['rollout']}/activate", {})
    exp = await _post(
        admin,
        "/api/v1/experiments",
        {
            "experiment_key": f"ctl-faults-{suffix}",
            "experiment_name": f"Control writes through a broker restart ({suffix})",
            "hypothesis": "Kafka is not on the control plane's write path.",
            "schema_id": schema_id,
            "deliverable_type": DELIVERABLE_TYPE,
            "primary_metric": "success_rate",
            "min_sample_size": 100,
            "confidence_level": 0.95,
            "coverage": 0.5,
            "variants": [
                {"variant_id": ids["control"], "is_control": True, "traffic_percentage": 50},
                {"variant_id": ids["treatment"], "is_control": False, "traffic_percentage": 50},
            ],
        },
    )
    experiment_id = str(exp["id"])
    await _post(admin, f"/api/v1/experiments/{experiment_id}/start", {})
    variant = (await admin.get(f"/api/v1/versions/variants/{ids['rollout']}")).json()
    schema_now = (await admin.get(f"/api/v1/schemas/{schema_id}")).json()
    revision = schema_now.get("config_revision")
    assert isinstance(revision, int), f"no config_revision in the schema: {schema_now}"
    assert variant["status"] == "active", variant
    return Setup(schema_id, key, ids["rollout"], experiment_id, revision)


def _allocation(i: int) -> int:
    """The i-th allocation written: 5..94 percent, never twice the same in a row."""
    return 5 + (i * 37) % 90


async def _write_loop(
    admin: httpx.AsyncClient, setup: Setup, writes: Writes, stop: asyncio.Event
) -> None:
    """Set the rollout variant's allocation, one write at a time, until ``stop``."""
    path = f"/api/v1/versions/schemas/{setup.schema_id}/traffic-allocation"
    i = 0
    while not stop.is_set():
        i += 1
        allocation = _allocation(i)
        payload = {
            "allocations": [
                {"variant_id": setup.rollout_variant_id, "traffic_allocation": allocation}
            ]
        }
        started = time.monotonic()
        write = Write(allocation, started, 0.0)
        try:
            resp = await admin.post(path, json=payload)
        except httpx.TimeoutException:
            write.error = f"no answer in {CLIENT_TIMEOUT}s"
        except httpx.TransportError as exc:
            write.error = f"{exc.__class__.__name__} (service gone?)"
        else:
            write.status = resp.status_code
            if resp.is_success:
                write.revision = int(resp.json()["config_revision"])
            else:
                err = error_json(resp)
                clean = resp.status_code < 500 and err is not None and "error" in err
                write.error = ("" if clean else "UNCLEAN ") + f"{resp.text[:300]}"
        write.seconds = time.monotonic() - started
        writes.done.append(write)
        await asyncio.sleep(0.05)


async def _served(client: httpx.AsyncClient, setup: Setup) -> dict[str, Any]:
    resp = await client.post("/api/v1/assign", json={"schema": setup.schema_key, "unit_id": "p"})
    assert resp.status_code == 200, f"assign: {resp.status_code} {resp.text[:300]}"
    body: dict[str, Any] = resp.json()
    return body


async def _wait_served(
    client: httpx.AsyncClient, setup: Setup, revision: int, timeout: float
) -> float:
    """Seconds until the assignment service decides with ``revision``."""
    started = time.monotonic()
    while True:
        body = await _served(client, setup)
        if body["revision"] == revision:
            return time.monotonic() - started
        assert body["revision"] < revision, f"revision {body['revision']} > {revision} served"
        assert time.monotonic() - started < timeout, (
            f"the assignment service still serves revision {body['revision']}, not the last "
            f"acknowledged {revision}, {timeout:.0f}s later"
        )
        await asyncio.sleep(0.2)


async def _pending(conn: asyncpg.Connection) -> int:
    count: int = await conn.fetchval(
        "SELECT count(*) FROM config_outbox WHERE published_at IS NULL"
    )
    return count


async def _check_rollout(client: httpx.AsyncClient, setup: Setup, allocation: int) -> int:
    """Every unit outside the experiment is in the rollout variant iff its rollout
    bucket (GrowthBook hash v2 with the schema's rollout seed, computed here) is below
    ``allocation``%; returns how many units were decided by the rollout."""
    resp = await client.post(
        "/api/v1/assign/batch", json={"schema": setup.schema_key, "units": UNITS}
    )
    assert resp.status_code == 200, f"assign/batch: {resp.status_code} {resp.text[:300]}"
    bucket_of = make_hasher_v2(rollout_seed(setup.schema_key))
    outside = 0
    wrong: list[str] = []
    for unit, d in zip(UNITS, resp.json(), strict=True):
        if d["in_experiment"]:
            continue
        outside += 1
        want = "rollout" if bucket_of(unit) < allocation / 100 else None
        if d["variant_key"] != want:
            wrong.append(f"{unit}: {d['variant_key']} ({d['reason']}), expected {want}")
    assert outside > 300, f"only {outside} of {len(UNITS)} units outside the experiment"
    assert not wrong, (
        f"{len(wrong)} units not decided with the last allocation {allocation}%: {wrong[:5]}"
    )
    return outside


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def _start_failure(stack: PrivateStack, down: float) -> str:
    """Why the broker did not start again, as far as its log tells."""
    log = stack.log("kafka")
    with contextlib.suppress(OSError):
        if "Address already in use" in log.read_text(errors="replace")[-200_000:]:
            return (
                f"the broker did not start again after {down:.1f}s away: its port "
                f"{stack.ports['KAFKA']} was taken (Address already in use); see {log}"
            )
    return f"the broker did not start again after {down:.1f}s away; see {log}"


async def test_kafka_restart_during_control_writes(
    private_stack: PrivateStack, reliability_summary: list[str]
) -> None:
    stack = private_stack
    down_s = 20.0 if LONG else 5.0
    admin = stack.client("admin", timeout=CLIENT_TIMEOUT)
    client = stack.client("client", timeout=CLIENT_TIMEOUT)
    conn = await asyncpg.connect(stack.database_url)
    writes = Writes()
    stop = asyncio.Event()
    writer: asyncio.Task[None] | None = None
    try:
        setup = await _create(admin, uuid.uuid4().hex[:8])
        await _wait_served(client, setup, setup.revision, timeout=30)

        writer = asyncio.create_task(_write_loop(admin, setup, writes, stop))
        deadline = time.monotonic() + 30
        while len(writes.acked) < 5:
            assert not writer.done(), f"the writer stopped: {writer}"
            assert time.monotonic() < deadline, f"writes before the fault: {writes.done[-5:]}"
            await asyncio.sleep(0.1)

        fault_at = time.monotonic()
        stopped = await asyncio.to_thread(stack.stop_kafka)
        gone_at = time.monotonic()
        log_lines_gone = _lines(stack.log("assignment"))
        # the outage: writes go on; the relay cannot publish what they queue
        acked_gone = len(writes.acked)
        deadline = gone_at + down_s + 30
        while time.monotonic() - gone_at < down_s or len(writes.acked) - acked_gone < 3:
            assert not writer.done(), f"the writer stopped: {writer}"
            assert time.monotonic() < deadline, (
                f"fewer than 3 writes acknowledged in {down_s + 30:.0f}s with the broker away: "
                f"{writes.done[-5:]}"
            )
            await asyncio.sleep(0.1)
        # the relay's send is blocked on the absent broker: /health says so once a row has
        # waited STALLED_AFTER_S, long before the send's request timeout
        deadline = gone_at + STALLED_AFTER_S + 30
        while True:
            control_now = (await client.get("/health")).json()["components"]["control"]
            if control_now["status"] == "degraded":
                break
            assert time.monotonic() < deadline, (
                f"control /health not degraded {time.monotonic() - gone_at:.0f}s after the "
                f"broker went away with configs pending: {control_now}"
            )
            await asyncio.sleep(0.5)
        degraded_after = time.monotonic() - gone_at
        pending_down = await _pending(conn)
        health_down = (await client.get("/health")).json()
        down = time.monotonic() - gone_at
        log_rate = (_lines(stack.log("assignment")) - log_lines_gone) / down
        assert log_rate < MAX_LOG_LINES_PER_S, (
            f"the assignment service logged {log_rate:.0f} lines/s with the broker away "
            f"(a reconnect loop?); see {stack.log('assignment')}"
        )
        try:
            started = await asyncio.to_thread(stack.start_kafka)
        except RuntimeError as exc:
            raise AssertionError(_start_failure(stack, down)) from exc
        back_at = time.monotonic()
        # a few more writes with the broker back, then the last one is the one to serve
        acked_back = len(writes.acked)
        deadline = back_at + 30
        while len(writes.acked) - acked_back < 3:
            assert not writer.done(), f"the writer stopped: {writer}"
            assert time.monotonic() < deadline, f"writes after the restart: {writes.done[-5:]}"
            await asyncio.sleep(0.1)
        stop.set()
        await writer

        failed = writes.failed()
        unclean = [
            w for w in failed if w.status is None or w.status >= 500 or "UNCLEAN" in (w.error or "")
        ]
        assert not unclean, (
            f"{len(unclean)} control writes failed uncleanly (5xx, transport error or "
            f"timeout) around the broker restart, e.g. "
            + "; ".join(f"{w.status} {w.error}" for w in unclean[:5])
        )
        assert not failed, (
            f"{len(failed)} control writes refused (Kafka is not on the write path), e.g. "
            + "; ".join(f"{w.status} {w.error}" for w in failed[:5])
        )
        during = [w for w in writes.done if fault_at <= w.started <= back_at]
        assert pending_down > 0, (
            f"no unpublished outbox row after {down:.1f}s with the broker away "
            f"({len(during)} writes acknowledged meanwhile): was it really stopped?"
        )
        revisions = [w.revision for w in writes.acked if w.revision is not None]
        assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions), (
            f"acknowledged revisions not strictly increasing: {revisions}"
        )
        last = writes.acked[-1]
        assert last.revision is not None

        # the last acknowledged config is served, decided with, and the outbox drained
        served_after = await _wait_served(
            client, setup, last.revision, timeout=CATCH_UP_S - (time.monotonic() - back_at)
        )
        served_at = time.monotonic()
        outside = await _check_rollout(client, setup, last.allocation)
        while (pending := await _pending(conn)) > 0:
            assert time.monotonic() - back_at < CATCH_UP_S, (
                f"{pending} outbox rows still unpublished {CATCH_UP_S:.0f}s after the broker "
                f"came back"
            )
            await asyncio.sleep(0.2)
        drained_after = time.monotonic() - back_at
        rows = await conn.fetch(
            "SELECT revision FROM config_outbox "
            "WHERE schema_id = $1::uuid AND event_type = 'config' AND revision > $2",
            setup.schema_id,
            setup.revision,
        )
        stored = {int(r["revision"]) for r in rows}
        assert stored == set(revisions), (
            f"outbox revisions of the schema {sorted(stored - set(revisions))[:5]} not "
            f"acknowledged, {sorted(set(revisions) - stored)[:5]} acknowledged but missing"
        )
        schema_row = await conn.fetchrow(
            "SELECT s.config_revision, v.traffic_allocation FROM workflow_schemas s "
            "JOIN schema_variants v ON v.schema_id = s.id WHERE s.id = $1::uuid AND v.id = $2::uuid",
            setup.schema_id,
            setup.rollout_variant_id,
        )
        assert schema_row is not None
        assert (schema_row["config_revision"], float(schema_row["traffic_allocation"])) == (
            last.revision,
            float(last.allocation),
        ), f"database {dict(schema_row)}, last acknowledged {last}"
        recovered = await wait_all_ok(stack)
    finally:
        stop.set()
        if writer is not None and not writer.done():
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        await conn.close()
        await admin.aclose()
        await client.aclose()

    slowest = max(w.seconds for w in writes.done)
    components = health_down.get("components", {})
    control = components.get("control", {})
    summary = (
        f"kafka restart under control writes: {len(writes.acked)} allocation writes "
        f"acknowledged, 0 refused ({len(during)} while the broker was away, slowest "
        f"{slowest:.2f}s); broker stopped {down:.1f}s before its start, away "
        f"{back_at - fault_at:.1f}s in all (stop {stopped:.1f}s, start {started:.1f}s); "
        f"{pending_down} outbox rows pending before the start, control /health degraded "
        f"{degraded_after:.1f}s after the stop, assignment logged "
        f"{log_rate:.1f} lines/s meanwhile, /health "
        f"{health_down.get('status')!r} (serving "
        f"{components.get('serving', {}).get('status')!r}, control "
        f"{control.get('status')!r}, relay oldest pending "
        f"{control.get('relay', {}).get('oldest_pending_s')}s, last_error "
        f"{control.get('relay', {}).get('last_error')!r}); last config (revision "
        f"{last.revision}, {last.allocation}%) served {served_at - back_at:.1f}s after the "
        f"broker was back ({served_after:.1f}s after the last write; {outside} units "
        f"outside the experiment decided with it), outbox empty after "
        f"{drained_after:.1f}s; all services ok {max(recovered.values()):.1f}s later"
    )
    print("\n" + summary)
    reliability_summary.append(summary)
