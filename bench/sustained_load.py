"""Sustained load: assignment traffic at 80% of the measured maximum plus a steady stream
of execution events, for a minute; errors, latency against the unloaded latency, memory.

Run against a running stack (``make up``; the script reads ``.stack/env``, whose values
win over the environment's: ``ASSIGNMENT_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``,
``ADMIN_API_KEY``, ``CLIENT_API_KEY``, and the stack directory ``ABFLOW_STACK_DIR`` for
the services' pid files)::

    .venv/bin/python bench/sustained_load.py                 # 60 s at 80% of the maximum
    .venv/bin/python bench/sustained_load.py --private       # on a private stack (ports 3xxxx)
    .venv/bin/python bench/sustained_load.py --duration 10   # a short run

Steps:

1. a schema with a running 50/50 experiment is created through the control API; every
   request below assigns a new unit id into it (so each also emits an exposure event);
2. **unloaded latency**: an open-loop generator at ``--idle-rate`` requests/s (default
   100) for ``--idle-duration`` seconds, no event stream: p50/p99;
3. **maximum**: a closed-loop load generator (its own process, uvloop, ``--conns``
   keep-alive connections, one request in flight each) for ``--max-duration`` seconds:
   requests/s at saturation, alone, then again while this process produces ``--events``
   execution events/s (valid events of the experiment's arms, idempotent producer,
   ``acks=all``) to the executions topic: on a small machine the broker, the aggregator
   and the producer take CPU from the service, and the sustained phase runs under that
   stream (``--max-without-events``: take the maximum measured alone);
4. **sustained**: the open-loop generator at ``--load`` (0.8) x the maximum for
   ``--duration`` seconds, the event stream going on. The generator schedules request *i* at ``t0 + i/rate`` whatever
   happened before; a request's latency is measured from its scheduled time, so a
   stalled server shows up in the tail instead of slowing the generator down
   (no coordinated omission). Errors = non-200 answers + failed connections.
5. RSS (``VmRSS`` of ``/proc/<pid>/status``) of each service process (pids from the
   stack's pid files) at the start and the end of step 4, and its maximum on the way;
   then the time until the aggregator has committed every event produced.

Human-readable lines, then one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from array import array
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("assignment", "analysis", "aggregator", "console")
P99_RATIO_TARGET = 2.0


# --- the load generator (its own process) --------------------------------------------------
def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """Closed loop (``rate`` None: each connection sends its next request on an answer)
    or open loop (``rate``/s on a schedule, latency from the scheduled time)."""
    import uvloop
    from _http import next_response  # bench/ is sys.path[0]: this file runs as a script

    host, port, conns = spec["host"], spec["port"], spec["conns"]
    warmup, duration, rate = spec["warmup"], spec["duration"], spec.get("rate")
    auth = f"Authorization: Bearer {spec['key']}\r\n" if spec.get("key") else ""
    head = (
        f"POST /api/v1/assign HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    schema = spec["schema"].encode()
    tag = uuid.uuid4().hex[:8].encode()
    latencies = array("d")
    state = {"measuring": False, "stop": False, "ok": 0, "errors": 0, "seq": 0}
    statuses: dict[str, int] = {}
    clock = time.perf_counter
    idle: list[Conn] = []
    backlog: collections.deque[float] = (
        collections.deque()
    )  # scheduled times waiting for a free connection (open loop)

    class Conn(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.busy = False
            self.started = 0.0
            self.transport: asyncio.Transport | None = None
            self.done = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport  # type: ignore[assignment]
            if rate is None:
                self.send(clock())
            else:
                idle.append(self)

        def send(self, started: float) -> None:
            state["seq"] += 1
            body = b'{"schema":"%s","unit_id":"%s-%d"}' % (schema, tag, state["seq"])
            self.started = started
            self.busy = True
            assert self.transport is not None
            self.transport.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data if self.buf else data
            while (response := next_response(buf)) is not None:
                status, buf = response
                self.busy = False
                now = clock()
                if state["measuring"]:
                    latencies.append(now - self.started)
                    state["ok" if status == "200" else "errors"] += 1
                    if status != "200":
                        statuses[status] = statuses.get(status, 0) + 1
                if state["stop"]:
                    assert self.transport is not None
                    self.transport.close()
                    return
                if rate is None:
                    self.send(clock())
                elif backlog:
                    self.send(backlog.popleft())
                else:
                    idle.append(self)
            self.buf = buf

        def connection_lost(self, exc: Exception | None) -> None:
            if self in idle:
                idle.remove(self)
            if not self.done.done():
                self.done.set_result(None)
            if state["stop"]:
                return
            if self.busy:  # a request without its answer: an error, sent again elsewhere
                state["errors"] += 1
                statuses["connection_lost"] = statuses.get("connection_lost", 0) + 1
                backlog.appendleft(self.started)
            # an idle keep-alive connection closed by the server: open another one
            asyncio.get_running_loop().create_task(reconnect())

    async def reconnect() -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            _, proto = await loop.create_connection(Conn, host, port)
            protocols.append(proto)

    protocols: list[Conn] = []

    async def dispatch(until: float) -> None:
        """Open loop: request i is due at t0 + i / rate."""
        assert rate is not None
        t0 = clock()
        i = 0
        while True:
            now = clock()
            if now >= until:
                return
            due = int((now - t0) * rate) + 1  # request i is due at t0 + i / rate <= now
            while i < due:
                at = t0 + i / rate
                i += 1
                if idle:
                    idle.pop(0).send(at)  # round robin: no connection idles long
                else:
                    backlog.append(at)
            # until the next request is due, at least 1 ms: uvloop's timers have a 1 ms
            # resolution and a shorter sleep spins, taking a core from the server
            await asyncio.sleep(max(0.001, t0 + i / rate - clock()))

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        protocols = [(await loop.create_connection(Conn, host, port))[1] for _ in range(conns)]
        if rate is None:
            await asyncio.sleep(warmup)
            state["measuring"] = True
            t0 = clock()
            await asyncio.sleep(duration)
        else:
            await dispatch(clock() + warmup)
            state["measuring"] = True
            t0 = clock()
            await dispatch(t0 + duration)
        elapsed = clock() - t0
        if rate is not None:
            # the requests already scheduled are answered (or time out) before stopping
            deadline = clock() + 10
            while (backlog or any(p.busy for p in protocols)) and clock() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        state["measuring"] = False
        state["stop"] = True
        for p in protocols:
            if p.transport is not None:
                p.transport.close()
        await asyncio.wait([p.done for p in protocols], timeout=5)
        lat = sorted(latencies)
        n = len(lat)

        def pct(q: float) -> float:
            return round(lat[min(n - 1, max(0, round(q * n) - 1))] * 1000, 3) if n else 0.0

        requests = state["ok"] + state["errors"]
        return {
            "requests": requests,
            "errors": state["errors"],
            "statuses": statuses,
            "seconds": round(elapsed, 3),
            "rps": round(requests / elapsed, 1) if elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "p999_ms": pct(0.999),
            "max_ms": pct(1.0),
        }

    return uvloop.run(main())


# --- orchestration -----------------------------------------------------------------------------
def _read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip().removeprefix("export ").strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k] = v.strip().strip("'\"")
    return out


def _run_load(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--loadgen", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        timeout=spec["warmup"] + spec["duration"] + 60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {proc.stderr.decode()}")
    result: dict[str, Any] = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return result


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _pids(stack_dir: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in SERVICES:
        try:
            pid = int((stack_dir / "pids" / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        if _rss_kib(pid) is not None:
            out[name] = pid
    return out


async def _setup(url: str, admin_key: str, client_key: str) -> Any:
    import httpx

    from deploy.demo.scenario import create_scenario

    headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else {}
    async with httpx.AsyncClient(base_url=url, timeout=10.0, headers=headers) as admin:
        scenario = await create_scenario(admin, suffix=f"load-{uuid.uuid4().hex[:6]}")
    headers = {"Authorization": f"Bearer {client_key}"} if client_key else {}
    async with httpx.AsyncClient(base_url=url, timeout=10.0, headers=headers) as client:
        deadline = time.monotonic() + 30
        while True:
            r = await client.post(
                "/api/v1/assign", json={"schema": scenario.schema_key, "unit_id": "warm"}
            )
            if r.status_code == 200 and r.json()["in_experiment"]:
                return scenario
            if time.monotonic() > deadline:
                raise RuntimeError(f"the experiment is not served: {r.status_code} {r.text[:200]}")
            await asyncio.sleep(0.2)


class EventStream:
    """``rate`` valid execution events/s of the scenario's arms to the executions topic."""

    def __init__(self, bootstrap: str, scenario: Any, rate: float) -> None:
        self.bootstrap = bootstrap
        self.scenario = scenario
        self.rate = rate
        self.sent = 0
        self.errors = 0
        self.behind_s = 0.0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        import orjson
        from aiokafka import AIOKafkaProducer

        from shared.topics import EXECUTIONS

        s = self.scenario
        arms = [s.control_variant_id, s.treatment_variant_id]
        topic = EXECUTIONS.full_name(os.environ.get("TOPIC_PREFIX", ""))
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=20
        )
        await producer.start()
        tag = uuid.uuid4().hex[:8]
        t0 = time.perf_counter()
        tick = 0.1
        try:
            while not self._stop.is_set():
                due = int((time.perf_counter() - t0) * self.rate) - self.sent
                now = datetime.now(UTC)
                futures = []
                for _ in range(max(0, due)):
                    i = self.sent
                    self.sent += 1
                    duration = 150.0 + (i * 7919 % 200)
                    ev = {
                        "event_version": 1,
                        "execution_id": f"load-{tag}-{i}",
                        "schema_id": s.schema_id,
                        "schema_version": s.schema_version,
                        "variant_id": arms[i % 2],
                        "experiment_id": s.experiment_id,
                        "unit_id": f"u-{i % 5000}",
                        "success": i % 10 != 0,
                        "duration_ms": duration,
                        "risk_score": (i % 100) / 100,
                        "started_at": (now - timedelta(milliseconds=duration)).isoformat(),
                        "completed_at": now.isoformat(),
                    }
                    futures.append(
                        await producer.send(
                            topic, key=ev["execution_id"].encode(), value=orjson.dumps(ev)
                        )
                    )
                for res in await asyncio.gather(*futures, return_exceptions=True):
                    if isinstance(res, BaseException):
                        self.errors += 1
                self.behind_s = max(
                    self.behind_s, (time.perf_counter() - t0) - self.sent / self.rate
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), tick)
        finally:
            await producer.stop()


async def _aggregated_after(database_url: str, bootstrap: str, timeout: float) -> float | None:
    """Seconds until the aggregator's committed offsets reach the end of the topic."""
    from shared.topics import EXECUTIONS
    from tests.reliability.faults.streams import end_offsets, wait_aggregated

    topic = EXECUTIONS.full_name(os.environ.get("TOPIC_PREFIX", ""))
    try:
        ends = await end_offsets(bootstrap, topic)
        return await wait_aggregated(database_url, topic, ends, timeout=timeout)
    except AssertionError:
        return None


async def run(args: argparse.Namespace, env: dict[str, str], stack_dir: Path) -> dict[str, Any]:
    url = env["ASSIGNMENT_URL"]
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    client_key = env.get("CLIENT_API_KEY", "")
    scenario = await _setup(url, env.get("ADMIN_API_KEY", ""), client_key)
    base = {"host": host, "port": port, "schema": scenario.schema_key, "key": client_key}
    print(f"target {url} (schema {scenario.schema_key}, 50/50 experiment running)", flush=True)

    idle = await asyncio.to_thread(
        _run_load,
        {
            **base,
            "conns": 16,
            "warmup": 1.0,
            "duration": args.idle_duration,
            "rate": args.idle_rate,
        },
    )
    print(
        f"unloaded (open loop {args.idle_rate:.0f} req/s, {args.idle_duration:.0f}s): "
        f"p50 {idle['p50_ms']} ms, p99 {idle['p99_ms']} ms, errors {idle['errors']} "
        f"{idle['statuses'] or ''}",
        flush=True,
    )
    closed = {**base, "conns": args.conns, "warmup": 2.0, "duration": args.max_duration}
    alone = await asyncio.to_thread(_run_load, closed)
    print(
        f"maximum alone (closed loop, {args.conns} connections, {args.max_duration:.0f}s): "
        f"{alone['rps']:,.0f} req/s, p50 {alone['p50_ms']} ms, p99 {alone['p99_ms']} ms, "
        f"errors {alone['errors']}",
        flush=True,
    )
    events = EventStream(env["KAFKA_BOOTSTRAP_SERVERS"], scenario, args.events)
    producing = asyncio.create_task(events.run())
    maximum = alone
    if not args.max_without_events:
        # on a small machine the event stream (broker, aggregator, producer) takes CPU
        # from the service: its maximum is measured under the same stream
        maximum = await asyncio.to_thread(_run_load, closed)
        print(
            f"maximum with {args.events:,.0f} events/s: {maximum['rps']:,.0f} req/s, "
            f"p50 {maximum['p50_ms']} ms, p99 {maximum['p99_ms']} ms, "
            f"errors {maximum['errors']}",
            flush=True,
        )
    max_rps = maximum["rps"]

    rate = round(max_rps * args.load, 1)
    pids = _pids(stack_dir)
    rss_start = {name: _rss_kib(pid) for name, pid in pids.items()}
    rss_max = dict(rss_start)
    loading = asyncio.create_task(
        asyncio.to_thread(
            _run_load,
            {
                **base,
                "conns": args.open_conns,
                "warmup": 2.0,
                "duration": args.duration,
                "rate": rate,
            },
        )
    )
    while not loading.done():
        for name, pid in pids.items():
            rss = _rss_kib(pid)
            if rss is not None:
                rss_max[name] = max(rss_max.get(name) or 0, rss)
        await asyncio.sleep(1.0)
    loaded = await loading
    rss_end = {name: _rss_kib(pid) for name, pid in pids.items()}
    events.stop()
    await producing
    caught_up = None
    if env.get("DATABASE_URL"):
        caught_up = await _aggregated_after(
            env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"], 120
        )
    ratio = loaded["p99_ms"] / idle["p99_ms"] if idle["p99_ms"] else None
    print(
        f"sustained (open loop {rate:,.0f} req/s = {args.load:.0%} of the maximum, "
        f"{args.duration:.0f}s, + {args.events:,.0f} events/s): {loaded['requests']:,} requests "
        f"({loaded['rps']:,.0f}/s), errors {loaded['errors']} {loaded['statuses'] or ''}, "
        f"p50 {loaded['p50_ms']} ms, p99 {loaded['p99_ms']} ms "
        f"({ratio:.2f}x unloaded; target <= {P99_RATIO_TARGET}x), p99.9 {loaded['p999_ms']} ms",
        flush=True,
    )
    print(
        f"events: {events.sent:,} produced, {events.errors} failed, producer at most "
        f"{events.behind_s:.2f}s behind schedule; aggregator committed them all "
        + (f"{caught_up:.1f}s after the run" if caught_up is not None else "(not checked)"),
        flush=True,
    )
    for name in pids:
        s, e, m = rss_start.get(name), rss_end.get(name), rss_max.get(name)
        if s and e and m:
            print(
                f"RSS {name}: {s / 1024:.1f} MiB at start, {e / 1024:.1f} MiB at end "
                f"(max {m / 1024:.1f} MiB, {100 * (e - s) / s:+.1f}%)",
                flush=True,
            )
    return {
        "benchmark": "sustained_load",
        "target": url,
        "max_rps": max_rps,
        "max_rps_alone": alone["rps"],
        "max_measured_with_events": not args.max_without_events,
        "load_fraction": args.load,
        "rate_rps": rate,
        "duration_s": args.duration,
        "requests": loaded["requests"],
        "achieved_rps": loaded["rps"],
        "errors": loaded["errors"] + idle["errors"] + alone["errors"] + maximum["errors"],
        "error_statuses": loaded["statuses"],
        "unloaded": {
            "rate_rps": args.idle_rate,
            "p50_ms": idle["p50_ms"],
            "p99_ms": idle["p99_ms"],
        },
        "loaded": {
            "p50_ms": loaded["p50_ms"],
            "p99_ms": loaded["p99_ms"],
            "p999_ms": loaded["p999_ms"],
            "max_ms": loaded["max_ms"],
        },
        "p99_ratio": round(ratio, 2) if ratio is not None else None,
        "p99_ratio_target": P99_RATIO_TARGET,
        "p99_within_target": ratio is not None and ratio <= P99_RATIO_TARGET,
        "events_per_s": args.events,
        "events_sent": events.sent,
        "event_errors": events.errors,
        "aggregator_caught_up_s": None if caught_up is None else round(caught_up, 1),
        "rss_kib": {
            name: {"start": rss_start.get(name), "end": rss_end.get(name), "max": rss_max.get(name)}
            for name in pids
        },
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--loadgen":
        print(json.dumps(_loadgen(json.loads(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of sustained load")
    parser.add_argument("--load", type=float, default=0.8, help="fraction of the maximum")
    parser.add_argument("--events", type=float, default=1000.0, help="execution events/s")
    parser.add_argument("--max-duration", type=float, default=8.0)
    parser.add_argument(
        "--max-without-events",
        action="store_true",
        help="take 80%% of the maximum measured without the event stream",
    )
    parser.add_argument("--idle-rate", type=float, default=100.0)
    parser.add_argument("--idle-duration", type=float, default=10.0)
    parser.add_argument("--conns", type=int, default=32, help="connections, closed loop")
    parser.add_argument("--open-conns", type=int, default=64, help="connections, open loop")
    parser.add_argument(
        "--private", action="store_true", help="start a private stack (ports 3xxxx) and stop it"
    )
    parser.add_argument("--stack-dir", default=None, help="stack directory (pid files, env)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    private = None
    if args.private:
        from tests.reliability.faults.stack import PrivateStack

        private = PrivateStack.create()
        print(f"starting a private stack in {private.directory} …", flush=True)
        private.up()
        stack_dir = private.directory
        env = {**private.values, **{f"{k.upper()}_API_KEY": v for k, v in private.own_keys.items()}}
        env.update({k: v for k, v in private.values.items() if k.endswith("_API_KEY")})
    else:
        stack_dir = Path(args.stack_dir or os.environ.get("ABFLOW_STACK_DIR") or ROOT / ".stack")
        env = {**os.environ, **_read_env_file(stack_dir / "env")}
    try:
        missing = [k for k in ("ASSIGNMENT_URL", "KAFKA_BOOTSTRAP_SERVERS") if not env.get(k)]
        if missing:
            raise SystemExit(f"error: {', '.join(missing)} not set (make up, or --private)")
        result = asyncio.run(run(args, env, stack_dir))
    finally:
        if private is not None:
            private.down()
            private.remove()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
