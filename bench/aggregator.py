"""Aggregator benchmark: end-to-end throughput of one worker, a bare consume loop, freshness.

    .venv/bin/python bench/aggregator.py [--events 1000000] [--rate 2000] [--fresh-seconds 30]

Needs ``KAFKA_BOOTSTRAP_SERVERS`` and ``DATABASE_URL`` (``source .stack/env``). Creates a
throw-away database (migrated) and topics under a unique prefix, then:

1. produces ``--events`` generated execution records (1% duplicates, 0.1% bad) to an
   executions topic with the platform's partition count, before anything is timed;
2. **bare**: one aiokafka consumer reads the whole topic and ``orjson``-decodes every
   value (no group, no work): the ceiling of a Python consumer on this machine;
3. **worker**: starts ``python -m services.aggregator.main`` and times from its start
   until PostgreSQL's committed offsets cover every record (everything aggregated and
   every raw execution stored); the ratio worker / bare is the target (>= 0.5);
4. **freshness**: with the worker caught up, produces at a steady ``--rate`` events/s
   for ``--fresh-seconds`` and polls PostgreSQL every 50 ms for each execution id: the
   time from the send to the first poll that sees it (p50 / p95 / max).

Besides wall-clock rates it reports the CPU time the worker process and its PostgreSQL
backends spent per record (from ``/proc``, so other load on the machine does not inflate
it), and the event-time span of the generated stream. Prints the figures; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.db.migrate import apply_migrations  # noqa: E402
from shared.kafka import ensure_topics  # noqa: E402
from shared.topics import DEAD_LETTER, EXECUTIONS, EXPOSURES  # noqa: E402
from tests.integration.aggregator.generator import (  # noqa: E402
    make_execution,
    make_stream,
    make_universe,
    produce,
)

LOG_DIR = Path(tempfile.gettempdir())


def start_worker(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m services.aggregator.main``, its log in ``log_path``."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "services.aggregator.main"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def backend_cpu(conn: asyncpg.Connection, db_name: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to ``db_name`` (when the server runs
    on this machine; 0 otherwise)."""
    pids = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", db_name
    )
    return sum(cpu_seconds(int(r["pid"])) for r in pids)


def event_time_span(values: list[bytes | None]) -> tuple[str, str, int]:
    """First and last ``completed_at`` of the records, and the number of UTC hours (the few
    bad records dated in the future left out)."""
    now = datetime.now(UTC).isoformat()
    times: list[str] = []
    for v in values:
        if v is None:
            continue
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
            t = orjson.loads(v).get("completed_at")
            if isinstance(t, str) and t <= now:
                times.append(t)
    hours = {datetime.fromisoformat(t).astimezone(UTC).strftime("%Y-%m-%dT%H") for t in times}
    return min(times), max(times), len(hours)


def pct(values: list[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    return data[min(len(data) - 1, int(q * (len(data) - 1) + 0.5))]


async def bare_loop(bootstrap: str, topic: str, total: int) -> tuple[float, int]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        started = time.perf_counter()
        n = 0
        while n < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for recs in batch.values():
                for r in recs:
                    if r.value is not None:
                        with contextlib.suppress(orjson.JSONDecodeError):
                            orjson.loads(r.value)
                    n += 1
        return time.perf_counter() - started, n
    finally:
        await consumer.stop()


async def committed(conn: asyncpg.Connection, topic: str) -> int:
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(next_offset), 0) FROM aggregator_offsets WHERE topic = $1", topic
        )
    )


def health(port: int) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as resp:
            data: dict[str, object] = json.loads(resp.read())
            return data
    except OSError:
        return None


def scrape(port: int) -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line.startswith("abflow_aggregator_") and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name] = float(value)
    return out


async def freshness(
    bootstrap: str, topic: str, conn: asyncpg.Connection, rate: int, seconds: float
) -> dict[str, float]:
    """Steady ``rate``/s for ``seconds``; time from send to visible in workflow_executions."""
    import random

    rng = random.Random(99)
    universe = make_universe(rng)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = asyncio.Event()

    async def poll() -> None:
        while not stop.is_set() or len(seen) < len(sent):
            outstanding = [i for i in sent if i not in seen]
            if outstanding:
                rows = await conn.fetch(
                    "SELECT execution_id FROM workflow_executions WHERE execution_id = ANY($1::text[])",
                    outstanding,
                )
                now = time.time()
                for r in rows:
                    seen[r["execution_id"]] = now
            if stop.is_set() and time.time() > deadline_after_stop:
                break
            await asyncio.sleep(0.05)

    deadline_after_stop = float("inf")
    poller = asyncio.create_task(poll())
    tick = 0.05
    per_tick = rate * tick
    started = time.time()
    i = 0
    carry = 0.0
    while time.time() - started < seconds:
        carry += per_tick
        k = int(carry)
        carry -= k
        futs = []
        for _ in range(k):
            eid = f"fresh-{uuid.uuid4().hex}"
            ev = make_execution(rng, universe, datetime.now(UTC), eid)
            futs.append(await producer.send(topic, orjson.dumps(ev), key=eid.encode()))
            sent[eid] = time.time()
            i += 1
        await asyncio.sleep(max(0.0, started + (i / rate) - time.time()))
    await producer.flush()
    await producer.stop()
    deadline_after_stop = time.time() + 30
    stop.set()
    await poller
    lat = [seen[e] - sent[e] for e in sent if e in seen]
    return {
        "events": len(sent),
        "seen": len(seen),
        "rate": len(sent) / seconds,
        "p50_s": pct(lat, 0.5),
        "p95_s": pct(lat, 0.95),
        "max_s": max(lat) if lat else float("nan"),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=2000, help="freshness: events per second")
    parser.add_argument("--fresh-seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=18993)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--days", type=float, default=4.0, help="event-time span of the stream")
    parser.add_argument(
        "--stream-cache",
        type=Path,
        help="pickle of the generated records: written on the first run, reused by the next "
        "ones (generating 1,000,000 records takes minutes); it must match the other options",
    )
    parser.add_argument(
        "--uniform",
        action="store_true",
        help="completion times uniform over --days instead of in stream order (every flush "
        "then rewrites rows of every hour: the worst case)",
    )
    args = parser.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    admin_url = os.environ.get("DATABASE_URL", "postgresql://abflow:abflow@127.0.0.1:15432/abflow")
    db_name = f"abflow_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    db_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{db_name}"))
    conn = await asyncpg.connect(db_url)
    await apply_migrations(conn)
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, (EXECUTIONS, EXPOSURES, DEAD_LETTER), prefix=prefix)
    topic = EXECUTIONS.full_name(prefix)
    worker: subprocess.Popen[bytes] | None = None
    result: dict[str, object] = {
        "events": args.events,
        "partitions": EXECUTIONS.partitions,
        "event_time": f"{'uniform' if args.uniform else 'in order'} over {args.days:g} days",
    }
    try:
        t = time.perf_counter()
        records = _load_stream(args.stream_cache) if args.stream_cache else None
        if records is None:
            stream = make_stream(
                args.events,
                seed=11,
                duplicate_rate=0.01,
                bad_rate=0.001,
                too_late=0,
                days=args.days,
                ordered=not args.uniform,
            )
            records = [(r.key, r.value) for r in stream.records]
            del stream
            if args.stream_cache:
                args.stream_cache.write_bytes(pickle.dumps(records))
        gen_s = time.perf_counter() - t
        first, last, hours = event_time_span(
            [v for _, v in records[:: max(1, len(records) // 20000)]]
        )
        result["event_time_first"], result["event_time_last"], result["event_hours"] = (
            first,
            last,
            hours,
        )
        print(f"event time {first} .. {last} ({hours} distinct hours in a sample)", flush=True)
        t = time.perf_counter()
        await produce(bootstrap, topic, records, EXECUTIONS.partitions)
        produce_s = time.perf_counter() - t
        size = sum(len(v or b"") for _, v in records)
        print(
            f"produced {len(records):,} records ({size / len(records):.0f} B avg) "
            f"in {produce_s:.1f}s (generated in {gen_s:.1f}s)",
            flush=True,
        )
        del records

        cpu0 = time.process_time()
        bare_s, n = await bare_loop(bootstrap, topic, args.events)
        bare_cpu = time.process_time() - cpu0
        bare_rate = n / bare_s
        print(
            f"bare aiokafka consume + orjson decode: {n:,} in {bare_s:.2f}s = {bare_rate:,.0f}/s",
            flush=True,
        )

        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "DATABASE_URL": db_url,
            "TOPIC_PREFIX": prefix,
            "AGGREGATOR_WEB_PORT": str(args.port),
            "AGGREGATOR_GROUP_ID": f"bench-{uuid.uuid4().hex[:6]}",
            "AGGREGATOR_SESSION_TIMEOUT_S": "6",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "INFO",
        }
        log_path = LOG_DIR / f"abflow-bench-aggregator-{prefix.rstrip('.')}.log"
        t0 = time.perf_counter()
        worker = start_worker(env, log_path)
        t_ready = None
        while True:
            await asyncio.sleep(0.1)
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}")
            if t_ready is None:
                h = health(args.port)
                if h is not None:
                    t_ready = time.perf_counter()
            done = await committed(conn, topic)
            if done >= args.events:
                break
            if time.perf_counter() - t0 > 1800:
                raise RuntimeError("worker did not catch up in 30 min")
        t_done = time.perf_counter()
        worker_cpu = cpu_seconds(worker.pid)
        db_cpu = await backend_cpu(conn, db_name)
        total_s = t_done - t0
        worker_rate = args.events / total_s
        metrics = scrape(args.port)
        counted = int(await conn.fetchval("SELECT count(*) FROM workflow_executions"))
        print(
            f"worker: {args.events:,} records in PostgreSQL {total_s:.2f}s after its start "
            f"= {worker_rate:,.0f}/s (health answered after {(t_ready or t_done) - t0:.1f}s); "
            f"{counted:,} distinct executions stored",
            flush=True,
        )
        steady = (
            args.events / (t_done - t_ready) if t_ready is not None and t_done > t_ready else None
        )
        if steady:
            print(
                f"worker throughput after start-up (from /health up): {steady:,.0f}/s", flush=True
            )
        ratio = worker_rate / bare_rate
        print(
            f"ratio worker / bare = {ratio:.2f} (target >= 0.5); worker log: {log_path}", flush=True
        )
        print(
            f"CPU per record: worker process {worker_cpu / args.events * 1e6:.1f} us "
            f"(bare loop {bare_cpu / args.events * 1e6:.1f} us), PostgreSQL backends "
            f"{db_cpu / args.events * 1e6:.1f} us",
            flush=True,
        )
        sink_sum = metrics.get('abflow_aggregator_sink_seconds_sum{kind="executions"}', 0.0)
        sink_n = metrics.get('abflow_aggregator_sink_seconds_count{kind="executions"}', 0.0)
        if sink_n:
            print(
                f"flushes: {sink_n:.0f}, mean transaction {sink_sum / sink_n * 1000:.0f} ms",
                flush=True,
            )

        fresh = await freshness(bootstrap, topic, conn, args.rate, args.fresh_seconds)
        print(
            f"freshness at {fresh['rate']:.0f}/s for {args.fresh_seconds:.0f}s: p50 {fresh['p50_s']:.2f}s, "
            f"p95 {fresh['p95_s']:.2f}s, max {fresh['max_s']:.2f}s ({fresh['seen']}/{fresh['events']} seen)",
            flush=True,
        )
        result.update(
            {
                "bare_events_per_s": round(bare_rate),
                "worker_events_per_s": round(worker_rate),
                "worker_events_per_s_after_startup": round(steady) if steady else None,
                "worker_seconds": round(total_s, 2),
                "ratio": round(ratio, 3),
                "worker_cpu_us_per_event": round(worker_cpu / args.events * 1e6, 1),
                "bare_cpu_us_per_event": round(bare_cpu / args.events * 1e6, 1),
                "postgres_cpu_us_per_event": round(db_cpu / args.events * 1e6, 1),
                "load_average": list(os.getloadavg()),
                "distinct_executions": counted,
                "freshness_rate_per_s": round(fresh["rate"]),
                "freshness_p50_s": round(fresh["p50_s"], 3),
                "freshness_p95_s": round(fresh["p95_s"], 3),
                "freshness_max_s": round(fresh["max_s"], 3),
                "targets_met": bool(
                    worker_rate >= 20_000 and ratio >= 0.5 and fresh["p95_s"] <= 5.0
                ),
            }
        )
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        await conn.close()
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()
        await _delete_topics(bootstrap, prefix)
    print(json.dumps(result))


def _load_stream(path: Path) -> list[tuple[bytes | None, bytes | None]] | None:
    if not path.exists():
        return None
    records: list[tuple[bytes | None, bytes | None]] = pickle.loads(path.read_bytes())
    return records


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    except Exception as exc:  # noqa: BLE001 - cleanup is best effort
        print(f"(could not delete topics: {exc!r})", file=sys.stderr)
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
