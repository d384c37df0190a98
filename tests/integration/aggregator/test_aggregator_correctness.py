"""A generated stream through the real worker: every stored aggregate is exact.

``AGGREGATOR_TEST_EVENTS`` sets the size (default 50,000; the issue's full run is 200,000).
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import random
import time
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import orjson
import pytest

from services.aggregator.sketch import merge_sketches
from shared.topics import DEAD_LETTER, EXECUTIONS, EXPOSURES
from tests.integration.aggregator.generator import (
    check_database,
    check_exposures,
    expected,
    expected_exposures,
    make_stream,
    produce,
    read_dead_letters,
    sketch_ok,
)
from tests.integration.aggregator.harness import WorkerProcess, wait_committed, worker_env
from tests.integration.assignment.helpers import eventually

pytestmark = pytest.mark.integration

EVENTS = int(os.environ.get("AGGREGATOR_TEST_EVENTS", "50000"))


async def _register_schema(
    conn: asyncpg.Connection, schema_id: str, versions: list[int], variants: list[str]
) -> None:
    """Catalog rows for one generated schema, so the cached variant metrics can be checked."""
    await conn.execute(
        "INSERT INTO workflow_schemas (id, key, name) VALUES ($1, $2, 'generated')",
        schema_id,
        f"gen-{schema_id[:8]}",
    )
    for v in versions:
        await conn.execute(
            "INSERT INTO workflow_schema_versions (schema_id, version_number, definition) "
            'VALUES ($1, $2, \'{"workflow_steps": [], "risk_config": {}, "config": {}}\'::jsonb)',
            schema_id,
            v,
        )
    for i, variant in enumerate(variants):
        await conn.execute(
            "INSERT INTO schema_variants (id, schema_id, base_version, variant_key) VALUES ($1, $2, $3, $4)",
            variant,
            schema_id,
            versions[0],
            f"v{i}",
        )


async def test_generated_stream_is_aggregated_exactly(
    kafka_bootstrap: str, database_url: str, topics: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    stream = make_stream(EVENTS, seed=seed, exposures=max(1000, EVENTS // 20), id_prefix=topics)
    counts = stream.counts()
    assert counts["duplicate"] > 0 and counts["too_late"] > 0 and counts["valid"] > 0.9 * EVENTS
    exp = expected(stream)
    assert sum(exp.dead_letters.values()) > 0

    conn = await asyncpg.connect(database_url)
    worker = WorkerProcess(
        "w-correct",
        worker_env(
            bootstrap=kafka_bootstrap,
            database_url=database_url,
            prefix=topics,
            group=f"g-{uuid.uuid4().hex[:8]}",
        ),
        tmp_path,
    )
    try:
        schema = stream.universe.schemas[0]
        variants = [v for v in stream.universe.variants[schema] if v is not None]
        await _register_schema(conn, schema, stream.universe.versions[schema], variants)

        started = time.monotonic()
        await produce(
            kafka_bootstrap,
            EXECUTIONS.full_name(topics),
            [(r.key, r.value) for r in stream.records],
            6,
        )
        await produce(kafka_bootstrap, EXPOSURES.full_name(topics), stream.exposures, 6)
        produced_s = time.monotonic() - started

        worker.start()
        await worker.wait_ready()

        async def healthy() -> bool:
            h = worker.health()
            return h is not None and h["http_status"] == 200 and h["status"] == "ok"

        # its Kafka probe can time out while the loop catches up (briefly "degraded")
        assert await eventually(healthy, timeout=20), worker.health()
        took = await wait_committed(
            conn, EXECUTIONS.full_name(topics), len(stream.records), 300, [worker]
        )
        print(
            f"\n{len(stream.records):,} records (seed {seed}) produced in {produced_s:.1f}s, "
            f"aggregated {took:.1f}s after the worker was ready: {counts}"
        )

        errors = await check_database(conn, stream, exp)
        assert not errors, "\n".join(errors)
        assert (
            await conn.fetchval(
                "SELECT sum(events_counted) FROM aggregator_offsets WHERE topic = $1",
                EXECUTIONS.full_name(topics),
            )
            == exp.distinct
        )

        # distinct exposed units per arm (Faust agent, at least once into an idempotent sink)
        want_units = len(expected_exposures(stream))
        for _ in range(150):
            n = await conn.fetchval(
                "SELECT count(*) FROM experiment_exposures WHERE experiment_id = ANY($1::uuid[])",
                list(stream.universe.experiments),
            )
            if n >= want_units:
                break
            await asyncio.sleep(0.2)
        assert not await check_exposures(conn, stream)
        counts_view = await conn.fetch(
            "SELECT variant_id::text AS v, exposed_units FROM v_experiment_exposure_counts "
            "WHERE experiment_id = ANY($1::uuid[])",
            list(stream.universe.experiments),
        )
        want_per_arm = Counter(v for v, _ in expected_exposures(stream).values())
        assert {r["v"]: r["exposed_units"] for r in counts_view} == dict(want_per_arm)

        # dead letters: exactly the bad records, each with its original bytes and reason
        dlq = await read_dead_letters(
            kafka_bootstrap,
            DEAD_LETTER.full_name(topics),
            sum(exp.dead_letters.values()) + stream.bad_exposures,
        )
        exec_letters = [d for d in dlq if d["source_topic"] == EXECUTIONS.full_name(topics)]
        assert Counter(d["error_code"] for d in exec_letters) == exp.dead_letters
        assert len({(d["partition"], d["offset"]) for d in exec_letters}) == len(exec_letters)
        bad_values = Counter(
            r.value for r in stream.records if r.kind not in ("valid", "duplicate")
        )
        got_values = Counter(
            None if d["value_b64"] is None else base64.b64decode(d["value_b64"])
            for d in exec_letters
        )
        assert got_values == bad_values
        expo_letters = [d for d in dlq if d["source_topic"] == EXPOSURES.full_name(topics)]
        assert len(expo_letters) == stream.bad_exposures

        # cached variant metrics of the registered schema (refreshed every second)
        async def check_cached_variant(variant: str) -> None:
            row = await conn.fetchrow(
                "SELECT total_executions, successful_executions, conversion_rate, avg_execution_time_ms, "
                "p95_execution_time_ms, metrics_updated_at FROM schema_variants WHERE id = $1",
                variant,
            )
            aggs = [a for k, a in exp.versions.items() if k[2] == variant]
            total = sum(a.total for a in aggs)
            assert row["total_executions"] == total
            assert row["successful_executions"] == sum(a.successes for a in aggs)
            durations = [d for a in aggs for d in a.durations]
            assert math.isclose(
                row["avg_execution_time_ms"], math.fsum(durations) / len(durations), rel_tol=1e-9
            )
            assert math.isclose(
                row["conversion_rate"], sum(a.successes for a in aggs) / total, rel_tol=1e-12
            )
            blobs = await conn.fetch(
                "SELECT duration_sketch FROM version_performance_metrics WHERE variant_id = $1 AND period_type = 'hour'",
                variant,
            )
            merged = merge_sketches(r["duration_sketch"] for r in blobs)
            assert sketch_ok(merged, durations, (0.95,))
            assert row["p95_execution_time_ms"] == merged.quantile(0.95)

        async def cached_metrics_match() -> bool:
            try:
                for variant in variants:
                    await check_cached_variant(variant)
            except (AssertionError, TypeError):  # TypeError: a column still NULL
                return False
            return True

        # polled until a refresh after the last commit, then checked with the messages
        await eventually(cached_metrics_match, timeout=30, every=0.5)
        for variant in variants:
            await check_cached_variant(variant)

        # /metrics: Prometheus text with our counters
        status, body = worker.get("/metrics")
        text = body.decode()
        assert status == 200
        assert (
            f'abflow_aggregator_events_total{{outcome="counted",topic="{EXECUTIONS.full_name(topics)}"}} {float(exp.distinct)}'
            in text
        )
        for name in (
            "consumer_lag",
            "dead_letters_total",
            "sink_seconds_bucket",
            "rows_written_total",
            "flushes_total",
        ):
            assert f"abflow_aggregator_{name}" in text
        assert worker.stop() == 0
    finally:
        worker.stop()
        await conn.close()


async def test_raw_rows_keep_the_event_fields(
    kafka_bootstrap: str, database_url: str, topics: str, tmp_path: Path
) -> None:
    """workflow_executions holds each distinct execution once, with its fields."""
    stream = make_stream(600, seed=random.randrange(1 << 30), id_prefix=topics, bad_rate=0.0)
    exp = expected(stream)
    conn = await asyncpg.connect(database_url)
    worker = WorkerProcess(
        "w-raw",
        worker_env(
            bootstrap=kafka_bootstrap,
            database_url=database_url,
            prefix=topics,
            group=f"g-{uuid.uuid4().hex[:8]}",
        ),
        tmp_path,
    )
    try:
        await produce(
            kafka_bootstrap,
            EXECUTIONS.full_name(topics),
            [(r.key, r.value) for r in stream.records],
            6,
        )
        worker.start()
        await wait_committed(conn, EXECUTIONS.full_name(topics), len(stream.records), 120, [worker])
        rows = await conn.fetch(
            "SELECT * FROM workflow_executions WHERE execution_id = ANY($1::text[])",
            list(exp.executions),
        )
        assert len(rows) == exp.distinct
        for r in rows:
            ev = exp.executions[r["execution_id"]]
            assert str(r["schema_id"]) == ev["schema_id"].lower()
            assert r["schema_version"] == ev["schema_version"]
            assert (None if r["variant_id"] is None else str(r["variant_id"])) == ev.get(
                "variant_id"
            )
            assert r["duration_ms"] == ev["duration_ms"]
            assert r["risk_score"] == ev["risk_score"]
            assert r["success"] is ev["success"]
            assert r["completed_at"].isoformat() == ev["completed_at"]
            assert orjson.loads(r["steps"]) == ev["steps"]
            assert r["unit_id"] == ev["unit_id"]
            assert r["source_partition"] is not None and r["source_offset"] is not None
    finally:
        worker.stop()
        await conn.close()
