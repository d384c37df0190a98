"""PostgreSQL side of the aggregator: progress, raw executions, hourly rows, exposures.

:func:`flush_executions` is the exactly-once step. In ONE transaction it

1. locks the ``aggregator_offsets`` rows of the partitions in the batch and checks that
   each still holds the offset this worker's state is based on (compare-and-set: a worker
   that lost a partition in a rebalance can never overwrite its new owner's progress);
2. looks up which of the batch's execution ids are stored already (a duplicate delivery:
   not counted again) and COPYs the others into ``workflow_executions`` (a concurrent
   insert of the same id by another worker fails the primary key: the transaction rolls
   back and the batch is read again);
3. merges the partial aggregates of exactly those executions into the partition's
   hourly rows (loaded from PostgreSQL when not cached) and upserts their ABSOLUTE values;
4. advances the offsets (and watermarks and counters) of the partitions.

Either all of it commits or none of it: PostgreSQL alone says which records are applied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from services.aggregator.decoding import Exposure
from services.aggregator.sketch import DurationSketch, decode_sketch, encode_sketch, merge_sketches
from services.aggregator.state import (
    Execution,
    ExperimentKey,
    Groups,
    PartialAggregate,
    PartitionState,
    VersionKey,
    hour_of,
    hour_start,
    without,
)
from services.aggregator.state import group as group_by_key

log = logging.getLogger(__name__)

__all__ = [
    "FlushResult",
    "PartitionBatch",
    "StalePartitions",
    "claim_partitions",
    "create_sink_pool",
    "flush_executions",
    "insert_exposures",
    "load_hours",
    "purge_raw_executions",
    "refresh_variant_metrics",
]

# metric columns of both tables, in the order of PartialAggregate.row_values(), with types
_METRIC_COLUMNS: tuple[tuple[str, str], ...] = (
    ("total_executions", "bigint"),
    ("successful_executions", "bigint"),
    ("failed_executions", "bigint"),
    ("duration_count", "bigint"),
    ("duration_sum", "float8"),
    ("duration_sum_sq", "float8"),
    ("duration_min", "float8"),
    ("duration_max", "float8"),
    ("risk_count", "bigint"),
    ("risk_sum", "float8"),
    ("risk_sum_sq", "float8"),
    ("risk_min", "float8"),
    ("risk_max", "float8"),
    ("duration_sketch", "bytea"),
    ("p50_execution_time_ms", "float8"),
    ("p95_execution_time_ms", "float8"),
    ("p99_execution_time_ms", "float8"),
    ("step_metrics", "jsonb"),
)
_METRIC_NAMES = ", ".join(c for c, _ in _METRIC_COLUMNS)
_SELECT_METRICS = ", ".join(f"m.{c}" for c, _ in _METRIC_COLUMNS)
_METRIC_UPDATE = ",\n    ".join(f"{c} = EXCLUDED.{c}" for c, _ in _METRIC_COLUMNS)
_STAGE_METRICS = ", ".join(f"{c} {t}" for c, t in _METRIC_COLUMNS)
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS aggregator_stage_version ("
    "schema_id uuid, schema_version int, variant_id uuid, period_start timestamptz, "
    f"source_partition int, {_STAGE_METRICS}) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS aggregator_stage_experiment ("
    "experiment_id uuid, variant_id uuid, period_start timestamptz, "
    f"source_partition int, {_STAGE_METRICS}) ON COMMIT DELETE ROWS",
)
_STAGE_VERSION_COLUMNS = (
    "schema_id",
    "schema_version",
    "variant_id",
    "period_start",
    "source_partition",
    *(c for c, _ in _METRIC_COLUMNS),
)
_STAGE_EXPERIMENT_COLUMNS = (
    "experiment_id",
    "variant_id",
    "period_start",
    "source_partition",
    *(c for c, _ in _METRIC_COLUMNS),
)


class StalePartitions(Exception):
    """Another worker committed these partitions after our state was loaded."""

    def __init__(self, partitions: Iterable[int]) -> None:
        self.partitions = sorted(set(partitions))
        super().__init__(f"partitions {self.partitions} were committed by another worker")


@dataclass
class PartitionBatch:
    """What one flush applies for one partition."""

    partition: int
    base_offset: int  # the next_offset PostgreSQL must still hold
    next_offset: int  # the next_offset after this batch
    watermark_s: float | None
    executions: list[Execution] = field(default_factory=list)
    dead_letters: int = 0


@dataclass
class FlushResult:
    counted: dict[int, int]
    duplicates: dict[int, int]
    version_rows: int
    experiment_rows: int
    raw_rows: int
    variant_rows: int = 0
    variants: set[str] = field(default_factory=set)  # variant ids with counted executions


# --------------------------------------------------------------------------- progress


async def claim_partitions(
    conn: asyncpg.Connection, group: str, topic: str, partitions: Iterable[int]
) -> dict[int, tuple[int, float | None]]:
    """``{partition: (next_offset, watermark epoch seconds)}``, creating missing rows at 0."""
    parts = sorted(set(partitions))
    if not parts:
        return {}
    await conn.execute(
        """
        INSERT INTO aggregator_offsets (consumer_group, topic, partition, next_offset)
        SELECT $1, $2, p, 0 FROM unnest($3::int[]) AS p
        ON CONFLICT DO NOTHING
        """,
        group,
        topic,
        parts,
    )
    rows = await conn.fetch(
        """
        SELECT partition, next_offset, watermark FROM aggregator_offsets
         WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3::int[])
        """,
        group,
        topic,
        parts,
    )
    return {
        r["partition"]: (
            int(r["next_offset"]),
            None if r["watermark"] is None else r["watermark"].timestamp(),
        )
        for r in rows
    }


# --------------------------------------------------------------------------- executions

# Raw executions are COPYed in binary (the cheapest path for the server: heap multi-insert, no
# text parsing). Metric rows and key lists travel as ONE JSON document (orjson in C on our
# side), far cheaper for the worker than asyncpg's per-element array encoding; numbers are
# written as shortest round-trip decimals, so the server reads back the very same doubles.
_EXISTING_IDS = """
SELECT w.execution_id FROM workflow_executions w
 WHERE w.execution_id IN (SELECT jsonb_array_elements_text($1::text::jsonb))
"""
_RAW_COLUMNS = (
    "execution_id",
    "schema_id",
    "schema_version",
    "variant_id",
    "variant_key",
    "experiment_id",
    "unit_id",
    "success",
    "duration_ms",
    "risk_score",
    "steps",
    "assignment_reason",
    "started_at",
    "completed_at",
    "source_partition",
    "source_offset",
)
# executions are COPYed as they are: their first fields are these columns, in this order
_RAW_WIDTH = len(_RAW_COLUMNS)
if Execution._fields[:_RAW_WIDTH] != tuple(
    "steps_doc" if c == "steps" else c for c in _RAW_COLUMNS
):
    raise RuntimeError("Execution's first fields must be the raw columns, in COPY order")

_UPSERT_VERSION = f"""
INSERT INTO version_performance_metrics AS t (
    schema_id, schema_version, variant_id, period_type, period_start, source_partition,
    {_METRIC_NAMES}, updated_at)
SELECT s.schema_id, s.schema_version, s.variant_id, 'hour', s.period_start, s.source_partition,
       {_METRIC_NAMES}, now()
  FROM aggregator_stage_version s
ON CONFLICT ON CONSTRAINT version_performance_metrics_natural_key DO UPDATE SET
    {_METRIC_UPDATE},
    version = t.version + 1,
    updated_at = now()
"""

_UPSERT_EXPERIMENT = f"""
INSERT INTO experiment_variant_metrics AS t (
    experiment_id, variant_id, period_type, period_start, source_partition,
    {_METRIC_NAMES}, updated_at)
SELECT s.experiment_id, s.variant_id, 'hour', s.period_start, s.source_partition,
       {_METRIC_NAMES}, now()
  FROM aggregator_stage_experiment s
ON CONFLICT ON CONSTRAINT experiment_variant_metrics_natural_key DO UPDATE SET
    {_METRIC_UPDATE},
    version = t.version + 1,
    updated_at = now()
"""

# Loading is by (partition, hour): every row of those hours comes into the cache (they are all
# this partition's), and the hour is then known complete. Plans stay simple index scans.
_LOAD_VERSION = f"""
SELECT m.schema_id::text AS k0, m.schema_version AS k1, m.variant_id::text AS k2,
       m.period_start AS k3, m.source_partition AS k4, {_SELECT_METRICS}
  FROM version_performance_metrics m
 WHERE m.period_type = 'hour' AND m.period_start = ANY($2::timestamptz[])
   AND m.source_partition = $1
"""

_LOAD_EXPERIMENT = f"""
SELECT m.experiment_id::text AS k0, m.variant_id::text AS k1, m.period_start AS k2,
       m.source_partition AS k3, {_SELECT_METRICS}
  FROM experiment_variant_metrics m
 WHERE m.period_type = 'hour' AND m.period_start = ANY($2::timestamptz[])
   AND m.source_partition = $1
"""


async def load_hours(conn: asyncpg.Connection, state: PartitionState, hours: Iterable[int]) -> int:
    """Bring every stored row of ``state``'s partition in ``hours`` into its cache."""
    wanted = sorted(set(hours) - state.loaded_hours) if not state.complete else []
    if not wanted:
        return 0
    starts = [hour_start(h) for h in wanted]
    p = state.partition
    n = 0
    for r in await conn.fetch(_LOAD_VERSION, p, starts):
        vk: VersionKey = (r["k0"], r["k1"], r["k2"], hour_of(r["k3"]), p)
        if vk not in state.versions:
            state.versions[vk] = PartialAggregate.from_columns(r)
            state.touched.setdefault(vk, 0)
            n += 1
    for r in await conn.fetch(_LOAD_EXPERIMENT, p, starts):
        ek: ExperimentKey = (r["k0"], r["k1"], hour_of(r["k2"]), p)
        if ek not in state.experiments:
            state.experiments[ek] = PartialAggregate.from_columns(r)
            state.touched.setdefault(ek, 0)
            n += 1
    state.loaded_hours.update(wanted)
    return n


async def _merge_variant_durations(
    conn: asyncpg.Connection,
    deltas: Mapping[VersionKey, PartialAggregate],
    states: Mapping[int, PartitionState],
) -> int:
    """Merge the batch's duration sketches into each (variant, partition) running sketch and
    upsert those (absolute) rows of ``aggregator_variant_durations``."""
    per: dict[tuple[str, int], DurationSketch] = {}
    for vk, delta in deltas.items():
        if vk[2] is None:
            continue
        key = (vk[2], vk[4])
        cur = per.get(key)
        if cur is None:
            per[key] = delta.sketch.copy()
        else:
            cur.merge(delta.sketch)
    if not per:
        return 0
    missing: dict[int, list[str]] = {}
    for variant, p in per:
        st = states[p]
        if variant not in st.variant_durations and not st.complete:
            missing.setdefault(p, []).append(variant)
    for p, variants in missing.items():
        rows = await conn.fetch(
            "SELECT variant_id::text AS v, duration_sketch FROM aggregator_variant_durations "
            "WHERE source_partition = $1 AND variant_id = ANY($2::uuid[])",
            p,
            variants,
        )
        for r in rows:
            states[p].variant_durations.setdefault(r["v"], decode_sketch(r["duration_sketch"]))
    records = []
    for (variant, p), delta_sketch in per.items():
        running = states[p].variant_durations.get(variant)
        if running is None:
            running = states[p].variant_durations[variant] = delta_sketch
        else:
            running.merge(delta_sketch)
        records.append((variant, p, int(running.count), encode_sketch(running)))
    await conn.executemany(
        """
        INSERT INTO aggregator_variant_durations AS t
               (variant_id, source_partition, duration_count, duration_sketch)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (variant_id, source_partition) DO UPDATE SET
            duration_count  = EXCLUDED.duration_count,
            duration_sketch = EXCLUDED.duration_sketch,
            updated_at      = now()
        """,
        records,
    )
    return len(records)


async def _summarize(
    groups: Groups,
) -> tuple[dict[VersionKey, PartialAggregate], dict[ExperimentKey, PartialAggregate]]:
    """:func:`~services.aggregator.state.summarize`, yielding to the event loop every few
    thousand executions so that a COPY running on the connection keeps streaming."""
    budget = [0]

    async def pace(n: int) -> None:
        budget[0] += n
        if budget[0] >= 4000:
            budget[0] = 0
            await asyncio.sleep(0)

    versions: dict[VersionKey, PartialAggregate] = {}
    for vk, items in groups[0].items():
        versions[vk] = PartialAggregate.of(items)
        await pace(len(items))
    experiments: dict[ExperimentKey, PartialAggregate] = {}
    for ek, items in groups[1].items():
        experiments[ek] = PartialAggregate.of(items)
        await pace(len(items))
    return versions, experiments


def _version_records(
    keys: Sequence[VersionKey], aggs: Sequence[PartialAggregate]
) -> list[tuple[Any, ...]]:
    return [
        (k[0], k[1], k[2], hour_start(k[3]), k[4], *agg.row_values())
        for k, agg in zip(keys, aggs, strict=True)
    ]


def _experiment_records(
    keys: Sequence[ExperimentKey], aggs: Sequence[PartialAggregate]
) -> list[tuple[Any, ...]]:
    return [
        (k[0], k[1], hour_start(k[2]), k[3], *agg.row_values())
        for k, agg in zip(keys, aggs, strict=True)
    ]


async def init_connection(conn: asyncpg.Connection) -> None:
    """JSON codecs of the aggregator's pool: jsonb in BINARY format (needed by binary COPY
    of ``workflow_executions.steps``; bytes or str are taken as JSON text), decoded with
    orjson."""
    await conn.set_type_codec(
        "jsonb",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "json", encoder=_json_text, decoder=orjson.loads, schema="pg_catalog", format="text"
    )
    for ddl in _STAGING:
        await conn.execute(ddl)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    return orjson.dumps(value).decode()


def _jsonb_encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return b"\x01" + value
    if isinstance(value, str):
        return b"\x01" + value.encode()
    return b"\x01" + orjson.dumps(value)


def _jsonb_decode(data: bytes) -> Any:
    return orjson.loads(data[1:])  # version byte 1, then the JSON text


async def create_sink_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 4, attempts: int = 30
) -> asyncpg.Pool:
    """An asyncpg pool with :func:`init_connection`, retried while the server is not up.

    (``shared.db.pool.create_pool`` registers text-format JSON codecs, with which asyncpg
    cannot COPY a jsonb column in binary.)
    """
    delay = 0.5
    for attempt in range(1, attempts + 1):
        try:
            pool: asyncpg.Pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=init_connection
            )
            return pool
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if attempt == attempts:
                raise
            log.warning("database not reachable (%s); retry %d/%d", exc, attempt, attempts)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    raise AssertionError("unreachable")


async def flush_executions(
    conn: asyncpg.Connection,
    *,
    group: str,
    topic: str,
    batches: Mapping[int, PartitionBatch],
    states: Mapping[int, PartitionState],
    writer: str,
    flush_seq: int,
    timings: dict[str, float] | None = None,
) -> FlushResult:
    """Apply the batches in one transaction (see the module docstring).

    Mutates the caches of ``states`` (merged rows); on any exception the caller must drop
    the caches and pending records of these partitions and re-read them from PostgreSQL.
    """
    parts = sorted(batches)
    clock = _Clock(timings)
    async with conn.transaction():
        # our own rows: skip the generic row-version trigger (see migration 0007)
        await conn.execute("SET LOCAL abflow.writer = 'aggregator'")
        rows = await conn.fetch(
            """
            SELECT partition, next_offset FROM aggregator_offsets
             WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3::int[])
             ORDER BY partition
               FOR UPDATE
            """,
            group,
            topic,
            parts,
        )
        held = {r["partition"]: int(r["next_offset"]) for r in rows}
        stale = [p for p in parts if held.get(p) != batches[p].base_offset]
        if stale:
            raise StalePartitions(stale)

        clock.lap("lock")
        # 1. raw executions; duplicates within the batch are dropped first (first wins)
        seen: set[str] = set()
        candidates: list[tuple[int, Execution]] = []
        for p in parts:
            b = batches[p]
            for ex in b.executions:
                if ex.execution_id in seen:
                    continue
                seen.add(ex.execution_id)
                candidates.append((p, ex))
        # Ids already stored (earlier flushes, other partitions) are looked up while this
        # process groups the executions by key: PostgreSQL and the worker work at the same
        # time. A concurrent insert of the same id by another worker
        # makes COPY fail on the primary key: the transaction rolls back and the batch is
        # read again.
        existing: set[str] = set()
        groups: Groups = ({}, {})
        if candidates:
            ids = orjson.dumps([ex.execution_id for _, ex in candidates]).decode()
            lookup = asyncio.ensure_future(conn.fetch(_EXISTING_IDS, ids))
            try:
                await asyncio.sleep(0)  # let the query go out
                groups = group_by_key(candidates)
            finally:
                found = await lookup
            existing = {r[0] for r in found}
        clock.lap("dedupe")
        counted = dict.fromkeys(parts, 0)
        new: list[tuple[int, Execution]] = []
        if existing:
            groups = without(groups, candidates, existing)
            new = [(p, ex) for p, ex in candidates if ex.execution_id not in existing]
        else:
            new = candidates
        for p, _ in new:
            counted[p] += 1
        # the COPY rows are the executions' first fields (see Execution); a plain tuple
        # slice encodes faster than the named tuple itself
        rows_out = [ex[:_RAW_WIDTH] for _, ex in new]
        # 2. COPY the new executions; their partial aggregates are computed meanwhile
        copy = (
            asyncio.ensure_future(
                conn.copy_records_to_table(
                    "workflow_executions", records=rows_out, columns=_RAW_COLUMNS
                )
            )
            if rows_out
            else None
        )
        try:
            dv, de = await _summarize(groups)
        finally:
            if copy is not None:
                await copy
        clock.lap("raw+aggregate")

        # 3. merge into the cached absolute rows (load the ones not cached) and upsert
        need: dict[int, set[int]] = {}
        for vk in dv:
            if vk not in states[vk[4]].versions:
                need.setdefault(vk[4], set()).add(vk[3])
        for ek in de:
            if ek not in states[ek[3]].experiments:
                need.setdefault(ek[3], set()).add(ek[2])
        for p, hours in need.items():
            await load_hours(conn, states[p], hours)
        clock.lap("load")
        v_keys: list[VersionKey] = []
        v_aggs: list[PartialAggregate] = []
        for vk, delta in dv.items():
            st = states[vk[4]]
            cur = st.versions.get(vk)
            if cur is None:
                cur = st.versions[vk] = delta  # no row yet: the delta is its whole value
            else:
                cur.merge(delta)
            st.touched[vk] = flush_seq
            v_keys.append(vk)
            v_aggs.append(cur)
        e_keys: list[ExperimentKey] = []
        e_aggs: list[PartialAggregate] = []
        for ek, delta in de.items():
            st = states[ek[3]]
            cur = st.experiments.get(ek)
            if cur is None:
                cur = st.experiments[ek] = delta
            else:
                cur.merge(delta)
            st.touched[ek] = flush_seq
            e_keys.append(ek)
            e_aggs.append(cur)
        clock.lap("merge")
        if v_keys:
            records = _version_records(v_keys, v_aggs)
            clock.lap("encode")
            await conn.copy_records_to_table(
                "aggregator_stage_version", records=records, columns=_STAGE_VERSION_COLUMNS
            )
            await conn.execute(_UPSERT_VERSION)
            clock.lap("upsert")
        if e_keys:
            records = _experiment_records(e_keys, e_aggs)
            clock.lap("encode")
            await conn.copy_records_to_table(
                "aggregator_stage_experiment", records=records, columns=_STAGE_EXPERIMENT_COLUMNS
            )
            await conn.execute(_UPSERT_EXPERIMENT)
            clock.lap("upsert")

        # running duration sketch per (variant, partition): all hours together
        variant_rows = await _merge_variant_durations(conn, dv, states)
        clock.lap("variants")

        # 4. progress
        per_part_total: dict[int, int] = dict.fromkeys(parts, 0)
        for p in parts:
            per_part_total[p] = len(batches[p].executions)
        duplicates = {p: per_part_total[p] - counted[p] for p in parts}
        await conn.execute(
            """
            UPDATE aggregator_offsets AS o SET
                next_offset    = u.next_offset,
                watermark      = coalesce(u.watermark, o.watermark),
                events_counted = o.events_counted + u.counted,
                duplicates     = o.duplicates + u.duplicates,
                dead_lettered  = o.dead_lettered + u.dead,
                writer         = $3,
                updated_at     = now()
              FROM unnest($4::int[], $5::bigint[], $6::timestamptz[], $7::bigint[], $8::bigint[],
                          $9::bigint[]) AS u(partition, next_offset, watermark, counted, duplicates, dead)
             WHERE o.consumer_group = $1 AND o.topic = $2 AND o.partition = u.partition
            """,
            group,
            topic,
            writer,
            parts,
            [batches[p].next_offset for p in parts],
            [_ts(batches[p].watermark_s) for p in parts],
            [counted[p] for p in parts],
            [duplicates[p] for p in parts],
            [batches[p].dead_letters for p in parts],
        )
        clock.lap("progress")
    clock.lap("commit")
    return FlushResult(
        counted=counted,
        duplicates=duplicates,
        version_rows=len(v_keys),
        experiment_rows=len(e_keys),
        raw_rows=len(rows_out),
        variant_rows=variant_rows,
        variants={vk[2] for vk in dv if vk[2] is not None},
    )


class _Clock:
    """Accumulates the time of each phase of a flush into ``timings`` (when given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.timings is None:
            return
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def _ts(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


# --------------------------------------------------------------------------- exposures


async def insert_exposures(conn: asyncpg.Connection, exposures: Iterable[Exposure]) -> int:
    """Distinct exposed units: insert, or move a unit's row to an EARLIER first exposure.

    The row of (experiment, unit) always ends up holding the earliest exposure seen, in
    whatever order and however often exposures arrive (idempotent and commutative).
    Returns the number of rows inserted or changed.
    """
    first: dict[tuple[str, str], Exposure] = {}
    for e in exposures:
        key = (e.experiment_id, e.unit_id)
        cur = first.get(key)
        if cur is None or e.exposed_at < cur.exposed_at:
            first[key] = e
    if not first:
        return 0
    rows = list(first.values())
    result = await conn.execute(
        """
        INSERT INTO experiment_exposures AS t (experiment_id, unit_id, variant_id, first_exposed_at, bucket)
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::float8[])
        ON CONFLICT (experiment_id, unit_id) DO UPDATE SET
            variant_id       = EXCLUDED.variant_id,
            first_exposed_at = EXCLUDED.first_exposed_at,
            bucket           = EXCLUDED.bucket
        WHERE EXCLUDED.first_exposed_at < t.first_exposed_at
        """,
        [e.experiment_id for e in rows],
        [e.unit_id for e in rows],
        [e.variant_id for e in rows],
        [e.exposed_at for e in rows],
        [e.bucket for e in rows],
    )
    return int(result.split()[-1])


# --------------------------------------------------------------------------- maintenance


async def refresh_variant_metrics(conn: asyncpg.Connection, variant_ids: Iterable[str]) -> int:
    """Recompute the cached metric columns of ``schema_variants`` for these variants.

    Counts and means come from the hourly rows summed over every hour and partition;
    ``p95_execution_time_ms`` from the merged running sketches of
    ``aggregator_variant_durations`` (one per partition; within 1% relative).
    """
    ids = sorted(set(variant_ids))
    if not ids:
        return 0
    sketches = await conn.fetch(
        """
        SELECT d.variant_id::text AS variant_id, d.duration_sketch
          FROM aggregator_variant_durations d
          JOIN schema_variants v ON v.id = d.variant_id
         WHERE d.variant_id = ANY($1::uuid[])
        """,
        ids,
    )
    by_variant: dict[str, list[bytes]] = {}
    for r in sketches:
        by_variant.setdefault(r["variant_id"], []).append(r["duration_sketch"])
    p95 = {v: merge_sketches(blobs).quantile(0.95) for v, blobs in by_variant.items()}
    result = await conn.execute(
        """
        WITH sums AS (
            SELECT m.variant_id,
                   sum(m.total_executions)::bigint      AS total,
                   sum(m.successful_executions)::bigint AS successes,
                   sum(m.failed_executions)::bigint     AS failures,
                   sum(m.duration_count)::bigint        AS d_count,
                   sum(m.duration_sum)                  AS d_sum,
                   sum(m.risk_count)::bigint            AS r_count,
                   sum(m.risk_sum)                      AS r_sum
              FROM version_performance_metrics m
              JOIN schema_variants v ON v.id = m.variant_id AND v.schema_id = m.schema_id
             WHERE m.variant_id = ANY($1::uuid[]) AND m.period_type = 'hour'
             GROUP BY m.variant_id
        ), p AS (
            SELECT * FROM unnest($2::uuid[], $3::float8[]) AS p(variant_id, p95)
        )
        UPDATE schema_variants v SET
            total_executions      = s.total,
            successful_executions = s.successes,
            failed_executions     = s.failures,
            conversion_rate       = CASE WHEN s.total > 0 THEN s.successes::float8 / s.total END,
            avg_execution_time_ms = CASE WHEN s.d_count > 0 THEN s.d_sum / s.d_count END,
            p95_execution_time_ms = coalesce(p.p95, v.p95_execution_time_ms),
            avg_risk_score        = CASE WHEN s.r_count > 0 THEN s.r_sum / s.r_count END,
            metrics_updated_at    = now()
          FROM sums s LEFT JOIN p ON p.variant_id = s.variant_id
         WHERE v.id = s.variant_id
        """,
        ids,
        list(p95),
        list(p95.values()),
    )
    return int(result.split()[-1])


async def purge_raw_executions(
    conn: asyncpg.Connection, older_than: datetime, batch: int = 10_000
) -> int:
    """Delete raw executions completed before ``older_than``, ``batch`` rows at a time."""
    total = 0
    while True:
        result = await conn.execute(
            """
            DELETE FROM workflow_executions
             WHERE ctid = ANY(ARRAY(SELECT ctid FROM workflow_executions
                                     WHERE completed_at < $1 LIMIT $2))
            """,
            older_than,
            batch,
        )
        n = int(result.split()[-1])
        total += n
        if n < batch:
            return total
