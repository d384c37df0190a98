"""Assignment benchmark: in-process decisions, HTTP ``POST /api/v1/assign`` beside a bare
FastAPI endpoint, and the batch endpoint.

Run: ``.venv/bin/python bench/assignment.py`` with ``KAFKA_BOOTSTRAP_SERVERS`` set
(``source .stack/env``). Prints human-readable lines, then one JSON object on its last
line.

1. In process: :func:`assignment_inprocess.run_inprocess_bench` (``decide`` against the
   official GrowthBook SDK's ``eval_feature`` on the same 3-arm experiment).
2. HTTP: the 50/30/20 config of (1) is published to the config topic under a fresh topic
   prefix on the real Kafka; a real ``uvicorn`` process (one worker, uvloop + httptools,
   no access log) serves the serving app (:mod:`services.assignment.serving.app`: the
   component reads that topic, exposures on, default settings), and a second one serves
   a bare FastAPI app whose ``POST /api/v1/assign`` returns a constant JSON body
   (``bare_app`` below). The load comes from a separate process (this script with
   ``--loadgen``: uvloop, N keep-alive connections over loopback, one request in
   flight per connection, every request with a new unit id, so every assignment into
   the experiment also emits an exposure event). When the machine has two or more CPUs
   the servers are pinned to one and the load generator to another. The two targets
   are loaded alternately for ``--rounds`` rounds of ``--duration`` seconds (after a
   warm-up), and the medians of the rounds are reported with their ratio.
3. Batch: ``POST /api/v1/assign/batch`` with 1,000 distinct units per request, same
   server, same load generator: assignments/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from array import array
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HTTP_RATIO_TARGET = 0.7
CONSTANT = {"status": "ok", "variant_key": "control", "bucket": 0.5}


# --- the baseline server ---------------------------------------------------------------
def bare_app() -> Any:
    """A bare FastAPI app: ``POST /api/v1/assign`` returns a constant JSON body."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/api/v1/assign")
    async def constant() -> dict[str, Any]:
        return CONSTANT

    return app


# --- the load generator (its own process) ------------------------------------------------
def _loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    import uvloop
    from _http import next_response  # bench/ is sys.path[0]: this file runs as a script

    host, port, path = spec["host"], spec["port"], spec["path"]
    conns, warmup, duration = spec["conns"], spec["warmup"], spec["duration"]
    mode = spec["mode"]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {spec['api_key']}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    schema = spec["schema"]
    tag = uuid.uuid4().hex[:8]
    batch_units = range(spec.get("batch_units", 0))

    latencies = array("d")
    state = {"measuring": False, "stop": False, "ok": 0, "errors": 0}
    clock = time.perf_counter

    class Conn(asyncio.Protocol):
        def __init__(self, idx: int) -> None:
            self.idx = idx
            self.seq = 0
            self.buf = b""
            self.sent_at = 0.0
            self.transport: asyncio.Transport | None = None
            self.done = asyncio.get_running_loop().create_future()

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.send()

        def send(self) -> None:
            self.seq += 1
            if mode == "batch":  # 1,000 new unit ids per request
                units = ",".join(f'"{tag}-{self.idx}-{self.seq}-{i}"' for i in batch_units)
                body = b'{"schema":"%s","units":[%s]}' % (schema.encode(), units.encode())
                req = head + str(len(body)).encode() + b"\r\n\r\n" + body
            else:
                body = b'{"schema":"%s","unit_id":"%s-%d-%d"}' % (
                    schema.encode(),
                    tag.encode(),
                    self.idx,
                    self.seq,
                )
                req = head + str(len(body)).encode() + b"\r\n\r\n" + body
            self.sent_at = clock()
            assert self.transport is not None
            self.transport.write(req)

        def data_received(self, data: bytes) -> None:
            buf = self.buf + data if self.buf else data
            while (response := next_response(buf)) is not None:
                status, buf = response
                now = clock()
                if state["measuring"]:
                    latencies.append(now - self.sent_at)
                    state["ok" if status == "200" else "errors"] += 1
                if state["stop"]:
                    assert self.transport is not None
                    self.transport.close()
                    return
                self.send()
            self.buf = buf

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_result(None)

    server_pid = spec.get("server_pid")

    def server_cpu() -> float:
        """CPU seconds (user + system) the server process has used so far."""
        if not server_pid:
            return 0.0
        with open(f"/proc/{server_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        protocols = []
        for i in range(conns):
            _, proto = await loop.create_connection(lambda i=i: Conn(i), host, port)
            protocols.append(proto)
        await asyncio.sleep(warmup)
        cpu0 = server_cpu()
        state["measuring"] = True
        t0 = clock()
        await asyncio.sleep(duration)
        state["measuring"] = False
        elapsed = clock() - t0
        cpu = server_cpu() - cpu0
        state["stop"] = True
        await asyncio.wait([p.done for p in protocols], timeout=5)
        lat = sorted(latencies)
        n = len(lat)

        def pct(q: float) -> float:
            return round(lat[min(n - 1, max(0, round(q * n) - 1))] * 1000, 3) if n else 0.0

        requests = state["ok"] + state["errors"]
        return {
            "requests": requests,
            "errors": state["errors"],
            "seconds": round(elapsed, 3),
            "rps": round(requests / elapsed, 1),
            "server_cpu_s": round(cpu, 3),
            "rps_per_cpu_s": round(requests / cpu, 1) if cpu > 0 else 0.0,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        }

    return uvloop.run(main())


# --- orchestration -------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load generator CPUs), or no pinning on a single CPU."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, {cpus[1]}


def _pin(pid: int, cpus: set[int] | None) -> None:
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cpus)


async def _publish_config(bootstrap: str, prefix: str) -> Any:
    from assignment_inprocess import build_config

    from shared.kafka import ensure_topics, make_producer
    from shared.topics import CONFIG

    await ensure_topics(bootstrap, prefix=prefix)
    cfg = build_config()
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            CONFIG.full_name(prefix),
            key=str(cfg.schema_id).encode(),
            value=cfg.model_dump_json().encode(),
        )
    finally:
        await producer.stop()
    return cfg


def _start_server(
    args: list[str],
    env: dict[str, str],
    port: int,
    cpus: set[int] | None,
    ready_path: str,
    ready_method: str = "GET",
) -> subprocess.Popen[bytes]:
    import httpx

    cmd = [
        sys.executable, "-m", "uvicorn", *args,
        "--host", "127.0.0.1", "--port", str(port),
        "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env})
    _pin(proc.pid, cpus)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {' '.join(cmd)}")
        try:
            r = httpx.request(ready_method, f"http://127.0.0.1:{port}{ready_path}", timeout=1,
                              json={"schema": "checkout", "unit_id": "warm"},
                              headers={"Authorization": f"Bearer {env.get('BENCH_API_KEY', '')}"})  # fmt: skip
            if r.status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become ready")


def _run_load(spec: dict[str, Any], cpus: set[int] | None) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--loadgen", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    _pin(proc.pid, cpus)
    out, _ = proc.communicate(timeout=spec["warmup"] + spec["duration"] + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_http_bench(
    bootstrap: str,
    *,
    conns: int,
    warmup: float,
    duration: float,
    rounds: int,
    no_exposures: bool = False,
) -> dict[str, Any]:
    import httpx

    prefix = f"bench{uuid.uuid4().hex[:8]}."
    cfg = asyncio.run(_publish_config(bootstrap, prefix))
    server_cpus, load_cpus = _cpus()
    serving_port, bare_port = _free_port(), _free_port()
    from shared.auth import ApiKeyEntry, Scope, hash_key, new_key

    api_key = new_key()  # the served app checks it like production (the bare app ignores it)
    env = {
        "API_KEYS": ApiKeyEntry("bench", Scope.CLIENT, hash_key(api_key)).render(),
        "BENCH_API_KEY": api_key,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TOPIC_PREFIX": prefix,
        "ABFLOW_SERVING_REPLICA_ID": "bench",
        "ABFLOW_SERVING_EXPOSURES_ENABLED": "false" if no_exposures else "true",
    }
    serving = _start_server(
        ["--factory", "services.assignment.serving.app:create_app"],
        env, serving_port, server_cpus, "/api/v1/assign", "POST",
    )  # fmt: skip
    bare = None
    try:
        bare = _start_server(
            ["--factory", "--app-dir", str(ROOT / "bench"), "assignment:bare_app"],
            {"BENCH_API_KEY": api_key}, bare_port, server_cpus, "/api/v1/assign", "POST",
        )  # fmt: skip
        base = {"host": "127.0.0.1", "path": "/api/v1/assign", "conns": conns,
                "warmup": warmup, "duration": duration, "schema": cfg.schema_key,
                "api_key": api_key}  # fmt: skip
        runs: dict[str, list[dict[str, Any]]] = {"bare": [], "assign": []}
        for _ in range(rounds):
            bare_spec = {**base, "port": bare_port, "server_pid": bare.pid, "mode": "single"}
            runs["bare"].append(_run_load(bare_spec, load_cpus))
            assign_spec = {
                **base,
                "port": serving_port,
                "server_pid": serving.pid,
                "mode": "single",
            }
            runs["assign"].append(_run_load(assign_spec, load_cpus))
        batch = _run_load(
            {**base, "port": serving_port, "server_pid": serving.pid, "mode": "batch",
             "path": "/api/v1/assign/batch",
             "conns": max(2, conns // 8), "batch_units": 1000},
            load_cpus,
        )  # fmt: skip
        metrics = httpx.get(f"http://127.0.0.1:{serving_port}/metrics", timeout=5).text
        health = httpx.get(f"http://127.0.0.1:{serving_port}/health", timeout=5).json()
    finally:
        for proc in (serving, bare):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()

    def med(kind: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[kind]), 3)

    bare_rps, assign_rps = med("bare", "rps"), med("assign", "rps")
    bare_cpu, assign_cpu = med("bare", "rps_per_cpu_s"), med("assign", "rps_per_cpu_s")
    pair_ratios = [
        a["rps"] / b["rps"] for a, b in zip(runs["assign"], runs["bare"], strict=True) if b["rps"]
    ]
    errors = sum(r["errors"] for rs in runs.values() for r in rs) + batch["errors"]
    return {
        "http_conns": conns,
        "http_exposures": not no_exposures,
        "http_rounds": rounds,
        "http_round_seconds": duration,
        "http_assign_rps": assign_rps,
        "http_assign_p50_ms": med("assign", "p50_ms"),
        "http_assign_p99_ms": med("assign", "p99_ms"),
        "http_bare_rps": bare_rps,
        "http_bare_p50_ms": med("bare", "p50_ms"),
        "http_bare_p99_ms": med("bare", "p99_ms"),
        "http_ratio": round(assign_rps / bare_rps, 3) if bare_rps else 0.0,
        "http_ratio_median_of_rounds": round(statistics.median(pair_ratios), 3),
        "http_assign_rps_per_server_cpu_s": assign_cpu,
        "http_bare_rps_per_server_cpu_s": bare_cpu,
        "http_ratio_cpu": round(assign_cpu / bare_cpu, 3) if bare_cpu else 0.0,
        "http_server_cpu_utilisation": {
            k: round(statistics.median(r["server_cpu_s"] / r["seconds"] for r in v), 2)
            for k, v in runs.items()
        },
        "http_rounds_rps": {k: [r["rps"] for r in v] for k, v in runs.items()},
        "http_errors": errors,
        "batch_units_per_request": 1000,
        "batch_requests_per_s": batch["rps"],
        "batch_p50_ms": batch["p50_ms"],
        "batch_p99_ms": batch["p99_ms"],
        "batch_assignments_per_s": round(batch["rps"] * 1000),
        "batch_assignments_per_server_cpu_s": round(batch["rps_per_cpu_s"] * 1000),
        "exposures_sent": int(_metric(metrics, "assignment_exposures_sent_total")),
        "exposures_dropped": int(_metric(metrics, "assignment_exposures_dropped_total")),
        "exposures_deduplicated": int(_metric(metrics, "assignment_exposures_deduplicated_total")),
        "serving_health": health.get("status"),
        "cpu_pinning": server_cpus is not None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=200_000, help="in-process unit ids")
    parser.add_argument("--conns", type=int, default=16, help="HTTP keep-alive connections")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before each round")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per target")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument(
        "--no-exposures", action="store_true", help="serve with exposure events off"
    )
    args = parser.parse_args()
    if args.loadgen:
        print(json.dumps(_loadgen(json.loads(args.loadgen))))
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from assignment_inprocess import run_inprocess_bench

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    result: dict[str, Any] = {}
    if not args.skip_inprocess:
        result.update(run_inprocess_bench(args.n))
        print(
            f"in process ({result['n']:,} units): decide p50 {result['inprocess_p50_us']} µs, "
            f"p99 {result['inprocess_p99_us']} µs, {result['inprocess_decisions_per_s']:,}/s; "
            f"growthbook eval_feature {result['growthbook_decisions_per_s']:,}/s; "
            f"speed-up {result['speedup']}x; identical: {result['assignments_identical']}"
        )
    http = run_http_bench(
        bootstrap,
        conns=args.conns,
        warmup=args.warmup,
        duration=args.duration,
        rounds=args.rounds,
        no_exposures=args.no_exposures,
    )
    result.update(http)

    def verdict(ratio: float) -> str:
        return "ok" if ratio >= HTTP_RATIO_TARGET else "MISSED"

    h = http
    print(
        f"HTTP POST /api/v1/assign, 1 uvicorn worker, {args.conns} connections, "
        f"{args.rounds} rounds x {args.duration:g} s (medians): {h['http_assign_rps']:,} req/s, "
        f"p50 {h['http_assign_p50_ms']} ms, p99 {h['http_assign_p99_ms']} ms; "
        f"{h['http_assign_rps_per_server_cpu_s']:,} req per server CPU-second"
    )
    print(
        f"bare FastAPI constant endpoint, same setup: {h['http_bare_rps']:,} req/s, "
        f"p50 {h['http_bare_p50_ms']} ms, p99 {h['http_bare_p99_ms']} ms; "
        f"{h['http_bare_rps_per_server_cpu_s']:,} req per server CPU-second"
    )
    print(
        f"ratio (req/s) {h['http_ratio']} [target >= {HTTP_RATIO_TARGET}: "
        f"{verdict(h['http_ratio'])}]; median of per-round ratios "
        f"{h['http_ratio_median_of_rounds']}; per server CPU-second {h['http_ratio_cpu']} "
        f"[{verdict(h['http_ratio_cpu'])}]"
    )
    print(
        f"  rounds req/s {h['http_rounds_rps']}; server CPU utilisation "
        f"{h['http_server_cpu_utilisation']} (below 1.0: the server did not get a whole CPU)"
    )
    print(
        f"batch endpoint, 1000 new units/request: {h['batch_assignments_per_s']:,} assignments/s "
        f"(p50 {h['batch_p50_ms']} ms per request; "
        f"{h['batch_assignments_per_server_cpu_s']:,} per server CPU-second)"
    )
    print(
        f"exposures sent {h['exposures_sent']:,}, dropped {h['exposures_dropped']:,}, "
        f"deduplicated {h['exposures_deduplicated']:,}; HTTP errors {h['http_errors']}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
