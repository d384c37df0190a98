"""A generated execution stream, a fast producer and an exact oracle for the aggregator.

Used by the integration tests and by ``bench/aggregator.py``.

:func:`make_stream` builds records over several days for several schemas, versions,
variants and experiments, with exact duplicates (retried emissions, some under another
key so they land in another partition) and bad records of every dead-letter reason.
:func:`expected` recomputes, from the distinct valid executions, what PostgreSQL must
hold, simulating the aggregator's per-partition watermark rule; :func:`check_database`
compares the two.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from services.aggregator.sketch import RELATIVE_ACCURACY, DurationSketch, decode_sketch
from services.aggregator.state import hour_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STEP_NAMES = ("fetch", "validate", "score", "approve", "notify")


def partition_of(key: bytes | None, partitions: int) -> int:
    """The partition aiokafka's (and Java's) default partitioner picks for ``key``."""
    assert key is not None
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    kind: str  # "valid", "duplicate" or the expected dead-letter code
    execution: dict[str, Any] | None = None  # parsed valid execution
    partition: int = -1


@dataclass
class Universe:
    schemas: list[str]
    versions: dict[str, list[int]]
    variants: dict[str, list[str | None]]  # per schema, None = base version
    experiments: dict[str, list[str]]  # experiment id -> arm variant ids
    experiment_of_variant: dict[str, str]
    schema_of_variant: dict[str, str]


def make_universe(rng: random.Random, schemas: int = 3) -> Universe:
    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    u = Universe([], {}, {}, {}, {}, {})
    for _ in range(schemas):
        s = uid()
        u.schemas.append(s)
        u.versions[s] = [1, 2, 3][: rng.randint(2, 3)]
        variants = [uid() for _ in range(3)]
        u.variants[s] = [None, *variants]
        for v in variants:
            u.schema_of_variant[v] = s
        exp = uid()
        u.experiments[exp] = variants[:2] if rng.random() < 0.5 else variants
        for v in u.experiments[exp]:
            u.experiment_of_variant[v] = exp
    return u


@dataclass
class Stream:
    records: list[Record]
    universe: Universe
    partitions: int
    exposures: list[tuple[bytes, bytes]] = field(default_factory=list)
    bad_exposures: int = 0

    def counts(self) -> Counter[str]:
        return Counter(r.kind for r in self.records)


def _iso(ts: datetime) -> str:
    return ts.isoformat()


def make_execution(
    rng: random.Random, u: Universe, completed: datetime, execution_id: str
) -> dict[str, Any]:
    schema = rng.choice(u.schemas)
    variant = rng.choice(u.variants[schema])
    experiment = u.experiment_of_variant.get(variant) if variant else None
    duration = rng.lognormvariate(5.5, 0.8)  # ~250 ms median
    if rng.random() < 0.01:
        duration = 0.0
    success = rng.random() < (0.9 if variant is None else 0.85)
    steps = []
    for name in rng.sample(STEP_NAMES, rng.randint(0, 4)):
        steps.append(
            {
                "name": name,
                "success": rng.random() < 0.95,
                "duration_ms": round(rng.random() * 100, 3),
            }
        )
    ev: dict[str, Any] = {
        "event_version": 1,
        "execution_id": execution_id,
        "schema_id": schema,
        "schema_version": rng.choice(u.versions[schema]),
        "variant_id": variant,
        "experiment_id": experiment,
        "unit_id": f"unit-{rng.randint(1, 50_000)}",
        "success": success,
        "duration_ms": duration,
        "risk_score": None if rng.random() < 0.2 else rng.random(),
        "steps": steps,
        "started_at": _iso(completed - timedelta(milliseconds=duration)),
        "completed_at": _iso(completed),
    }
    if variant is None:
        del ev["variant_id"]
        del ev["experiment_id"]
    if rng.random() < 0.05:
        ev["variant_key"] = "k-" + str(rng.randint(1, 9))
    if rng.random() < 0.1:  # upper-case ids are the same entity
        ev["schema_id"] = ev["schema_id"].upper()
    return ev


def _bad(rng: random.Random, u: Universe, now: datetime, i: int) -> tuple[bytes | None, str]:
    base = make_execution(rng, u, now - timedelta(hours=5), f"bad-{i}")
    kind = rng.choice(
        [
            "not_json",
            "not_json_tombstone",
            "oversize",
            "unknown_event_version",
            "schema_error_missing",
            "schema_error_type",
            "schema_error_extra",
            "out_of_range_risk",
            "out_of_range_duration",
            "out_of_range_version",
            "invalid_value_order",
            "invalid_value_nul",
            "too_far_in_future",
            "not_object",
        ]
    )
    if kind == "not_json":
        return b'{"execution_id": "x", ' + bytes([0xFF, 0xFE]), "not_json"
    if kind == "not_json_tombstone":
        return None, "not_json"
    if kind == "not_object":
        return b"[1, 2, 3]", "schema_error"
    if kind == "oversize":
        base["unit_id"] = "u"
        base["assignment_reason"] = None
        return orjson.dumps({**base, "padding": "x" * 70_000}), "oversize"
    if kind == "unknown_event_version":
        base["event_version"] = 2
        return orjson.dumps(base), "unknown_event_version"
    if kind == "schema_error_missing":
        del base["schema_id"]
        return orjson.dumps(base), "schema_error"
    if kind == "schema_error_type":
        base["schema_version"] = "two"
        return orjson.dumps(base), "schema_error"
    if kind == "schema_error_extra":
        base["colour"] = "blue"
        return orjson.dumps(base), "schema_error"
    if kind == "out_of_range_risk":
        base["risk_score"] = 1.5
        return orjson.dumps(base), "out_of_range"
    if kind == "out_of_range_duration":
        base["duration_ms"] = -3
        return orjson.dumps(base), "out_of_range"
    if kind == "out_of_range_version":
        base["schema_version"] = 0
        return orjson.dumps(base), "out_of_range"
    if kind == "invalid_value_order":
        base["started_at"], base["completed_at"] = base["completed_at"], base["started_at"]
        if base["started_at"] == base["completed_at"]:
            base["started_at"] = _iso(now)
        return orjson.dumps(base), "invalid_value"
    if kind == "invalid_value_nul":
        base["unit_id"] = "a\x00b"
        return orjson.dumps(base), "invalid_value"
    if kind == "too_far_in_future":
        ts = now + timedelta(days=30)
        base["started_at"] = _iso(ts)
        base["completed_at"] = _iso(ts)
        return orjson.dumps(base), "too_far_in_future"
    raise AssertionError(kind)


def make_stream(
    n: int,
    *,
    seed: int = 7,
    partitions: int = 6,
    days: float = 4.0,
    duplicate_rate: float = 0.03,
    bad_rate: float = 0.01,
    too_late: int = 20,
    exposures: int = 0,
    now: datetime | None = None,
    id_prefix: str = "",
    ordered: bool = False,
    jitter_s: float = 600.0,
) -> Stream:
    """``n`` records: valid executions, duplicates and bad records mixed.

    Completion times are spread uniformly over ``days`` (every flush touches rows of every
    hour: the hard case), or with ``ordered`` follow the stream order like a live feed or
    a backlog (each record up to ``jitter_s`` seconds late).
    """
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    u = make_universe(rng)
    start = now - timedelta(days=days)
    span = (now - timedelta(minutes=5) - start).total_seconds()
    prefix = id_prefix or f"s{seed}-"
    records: list[Record] = []
    valid: list[Record] = []
    i = 0
    late_budget = too_late
    while len(records) < n:
        roll = rng.random()
        if roll < bad_rate:
            value, code = _bad(rng, u, now, i)
            key = f"{prefix}bad-{i}".encode()
            records.append(Record(key, value, code))
        elif roll < bad_rate + duplicate_rate and valid:
            orig = rng.choice(valid[-2000:]) if rng.random() < 0.7 else rng.choice(valid)
            key = orig.key if rng.random() < 0.8 else orig.key + b"-retry"  # type: ignore[operator]
            records.append(Record(key, orig.value, "duplicate", orig.execution))
        elif late_budget > 0 and len(records) > n // 4 and rng.random() < 0.002:
            late_budget -= 1
            ev = make_execution(rng, u, now - timedelta(days=days + 30), f"{prefix}late-{i}")
            records.append(Record(ev["execution_id"].encode(), orjson.dumps(ev), "too_late", ev))
        else:
            if ordered:
                at = max(0.0, span * len(records) / n - rng.random() * jitter_s)
            else:
                at = rng.random() * span
            completed = start + timedelta(seconds=at)
            completed = completed.replace(microsecond=completed.microsecond // 1000 * 1000)
            ev = make_execution(rng, u, completed, f"{prefix}{i}")
            rec = Record(ev["execution_id"].encode(), orjson.dumps(ev), "valid", ev)
            records.append(rec)
            valid.append(rec)
        i += 1
    for r in records:
        r.partition = partition_of(r.key, partitions)
    stream = Stream(records, u, partitions)
    if exposures:
        stream.exposures, stream.bad_exposures = make_exposures(rng, u, exposures, now)
    return stream


def make_exposures(
    rng: random.Random, u: Universe, n: int, now: datetime
) -> tuple[list[tuple[bytes, bytes]], int]:
    out: list[tuple[bytes, bytes]] = []
    bad = 0
    exps = list(u.experiments)
    for i in range(n):
        if rng.random() < 0.01:
            out.append((f"bad-{i}".encode(), b"not json at all"))
            bad += 1
            continue
        exp = rng.choice(exps)
        unit = f"unit-{rng.randint(1, n // 3 + 1)}"
        variant = rng.choice(u.experiments[exp])
        ev = {
            "event_version": 1,
            "experiment_id": exp,
            "experiment_key": "exp",
            "variant_id": variant,
            "variant_key": "v",
            "schema_id": u.schema_of_variant[variant],
            "unit_id": unit,
            "bucket": rng.random(),
            "exposed_at": _iso(now - timedelta(seconds=rng.random() * 86400)),
        }
        out.append((unit.encode(), orjson.dumps(ev)))
    return out, bad


# --------------------------------------------------------------------------- producing


async def produce(
    bootstrap: str,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None]],
    partitions: int,
    *,
    producer: AIOKafkaProducer | None = None,
) -> None:
    """Produce in order per partition, fast (one batch per partition at a time)."""
    own = producer is None
    if producer is None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            max_batch_size=1024 * 1024,
            max_request_size=2 * 1024 * 1024,
        )
        await producer.start()
    try:
        batches = {p: producer.create_batch() for p in range(partitions)}
        inflight: dict[int, asyncio.Future[Any]] = {}

        async def ship(p: int) -> None:
            b = batches[p]
            b.close()
            if p in inflight:
                await inflight[p]  # keep at most one batch per partition in flight: order
            inflight[p] = await producer.send_batch(b, topic, partition=p)
            batches[p] = producer.create_batch()

        for key, value in records:
            p = partition_of(key, partitions)
            if batches[p].append(key=key, value=value, timestamp=None) is None:
                await ship(p)
                if batches[p].append(key=key, value=value, timestamp=None) is None:
                    raise RuntimeError("record larger than a batch")
        for p in range(partitions):
            if batches[p].record_count():
                await ship(p)
        await asyncio.gather(*inflight.values())
    finally:
        if own:
            await producer.stop()


# --------------------------------------------------------------------------- oracle


@dataclass
class Agg:
    total: int = 0
    successes: int = 0
    durations: list[float] = field(default_factory=list)
    risks: list[float] = field(default_factory=list)
    steps: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class Expected:
    versions: dict[tuple[str, int, str | None, int], Agg]
    experiments: dict[tuple[str, str, int], Agg]
    distinct: int
    dead_letters: Counter[str]
    executions: dict[str, dict[str, Any]]


def _norm(v: str | None) -> str | None:
    return None if v is None else v.lower()


def expected(stream: Stream, lateness_hours: float = 168.0) -> Expected:
    """Exact aggregates of the distinct valid executions, simulating the aggregator's rules."""
    watermark: dict[int, float] = {}
    seen: dict[str, dict[str, Any]] = {}
    dead: Counter[str] = Counter()
    for r in stream.records:
        if r.kind not in ("valid", "duplicate", "too_late"):
            dead[r.kind] += 1
            continue
        ev = r.execution
        assert ev is not None
        completed = datetime.fromisoformat(ev["completed_at"]).timestamp()
        wm = watermark.get(r.partition)
        if wm is not None and completed < wm - lateness_hours * 3600:
            dead["too_late"] += 1
            assert r.kind == "too_late", "a generated valid event would be too late"
            continue
        assert r.kind != "too_late", "an injected late event would be accepted"
        watermark[r.partition] = completed if wm is None else max(wm, completed)
        seen.setdefault(ev["execution_id"], ev)
    versions: dict[tuple[str, int, str | None, int], Agg] = defaultdict(Agg)
    experiments: dict[tuple[str, str, int], Agg] = defaultdict(Agg)
    for ev in seen.values():
        hour = hour_of(datetime.fromisoformat(ev["completed_at"]))
        variant = _norm(ev.get("variant_id"))
        targets = [versions[(ev["schema_id"].lower(), ev["schema_version"], variant, hour)]]
        if ev.get("experiment_id") and variant:
            targets.append(experiments[(ev["experiment_id"].lower(), variant, hour)])
        for a in targets:
            a.total += 1
            a.successes += 1 if ev["success"] else 0
            a.durations.append(float(ev["duration_ms"]))
            if ev.get("risk_score") is not None:
                a.risks.append(float(ev["risk_score"]))
            for st in ev["steps"]:
                cur = a.steps.setdefault(st["name"], [0, 0, [], []])
                cur[0] += 1
                cur[1] += 1 if st["success"] else 0
                cur[2].append(float(st["duration_ms"]))
    return Expected(dict(versions), dict(experiments), len(seen), dead, seen)


# --------------------------------------------------------------------------- checking


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


def sketch_ok(
    sketch: DurationSketch, values: list[float], qs: Sequence[float] = (0.5, 0.95, 0.99)
) -> bool:
    """Each quantile within DDSketch's guarantee around the values of its rank."""
    data = sorted(values)
    n = len(data)
    for q in qs:
        est = sketch.quantile(q)
        if est is None:
            return False
        rank = q * (n - 1)
        lo, hi = data[math.floor(rank)], data[math.ceil(rank)]
        eps = RELATIVE_ACCURACY * (1 + 1e-9)
        if not (lo * (1 - eps) - 1e-12 <= est <= hi * (1 + eps) + 1e-12):
            return False
    return True


def _variance(values: list[float]) -> float | None:
    return statistics.variance(values) if len(values) > 1 else None


def _variance_from(n: int, s: float, sq: float) -> float | None:
    if n < 2:
        return None
    return (sq - s * s / n) / (n - 1)


def variance_close(got: float, want: float, n: int, sq: float) -> bool:
    """Within 1e-9 relative, or within the float64 error bound of the one-pass formula.

    ``(Σx² − (Σx)²/n)/(n−1)`` cancels when the variance is tiny next to the squared mean
    (e.g. two nearly equal durations in an hour): even correctly rounded sums then only
    determine the variance to a few ulps of ``Σx²/(n−1)``. That is a property of the stored
    representation (sum of squares), not of the aggregation.
    """
    eps = 2.0**-52
    return abs(got - want) <= max(1e-9 * abs(want), 8 * n * eps * sq / (n - 1))


def _check_agg(
    key: Any, row: asyncpg.Record, sketch: DurationSketch, exp: Agg, errors: list[str]
) -> None:
    def err(msg: str) -> None:
        if len(errors) < 50:
            errors.append(f"{key}: {msg}")

    if row["total"] != exp.total or row["successes"] != exp.successes:
        err(f"counts {row['total']}/{row['successes']} != {exp.total}/{exp.successes}")
    if row["failures"] != exp.total - exp.successes:
        err("failures")
    if row["d_count"] != len(exp.durations):
        err("duration_count")
    if not close(row["d_sum"], math.fsum(exp.durations)):
        err(f"duration_sum {row['d_sum']} != {math.fsum(exp.durations)}")
    if not close(row["d_sq"], math.fsum(d * d for d in exp.durations)):
        err("duration_sum_sq")
    if row["d_min"] != min(exp.durations) or row["d_max"] != max(exp.durations):
        err("duration min/max")
    var = _variance(exp.durations)
    got = _variance_from(row["d_count"], row["d_sum"], row["d_sq"])
    if (var is None) != (got is None) or (
        var is not None
        and got is not None
        and not variance_close(got, var, row["d_count"], row["d_sq"])
    ):
        err(f"duration variance {got} != {var}")
    if row["r_count"] != len(exp.risks):
        err("risk_count")
    if exp.risks:
        if not close(row["r_sum"], math.fsum(exp.risks)) or not close(
            row["r_sq"], math.fsum(r * r for r in exp.risks)
        ):
            err("risk sums")
        if row["r_min"] != min(exp.risks) or row["r_max"] != max(exp.risks):
            err("risk min/max")
        rv, gv = _variance(exp.risks), _variance_from(row["r_count"], row["r_sum"], row["r_sq"])
        if (
            rv is not None
            and gv is not None
            and not variance_close(gv, rv, row["r_count"], row["r_sq"])
        ):
            err(f"risk variance {gv} != {rv}")
    steps = row["steps"]
    if set(steps) != set(exp.steps):
        err(f"step names {sorted(steps)} != {sorted(exp.steps)}")
    for name, (cnt, ok, durs, _) in exp.steps.items():
        st = steps.get(name)
        if st is None:
            continue
        if st[0] != cnt or st[1] != ok:
            err(f"step {name} counts")
        if not close(st[2], math.fsum(durs)) or not close(st[3], math.fsum(d * d for d in durs)):
            err(f"step {name} sums")
    if sketch.count != exp.total:
        err(f"sketch count {sketch.count} != {exp.total}")
    elif not sketch_ok(sketch, exp.durations):
        err("sketch quantiles outside the 1% guarantee")


_SUM_SQL = """
SELECT {keys},
       sum(total_executions)::bigint AS total, sum(successful_executions)::bigint AS successes,
       sum(failed_executions)::bigint AS failures, sum(duration_count)::bigint AS d_count,
       sum(duration_sum) AS d_sum, sum(duration_sum_sq) AS d_sq, min(duration_min) AS d_min,
       max(duration_max) AS d_max, sum(risk_count)::bigint AS r_count, sum(risk_sum) AS r_sum,
       sum(risk_sum_sq) AS r_sq, min(risk_min) AS r_min, max(risk_max) AS r_max,
       array_agg(duration_sketch) AS sketches, array_agg(step_metrics::text) AS step_json,
       array_agg(p95_execution_time_ms) AS p95s
  FROM {table}
 WHERE period_type = 'hour' AND {where}
 GROUP BY {keys}
"""


def _steps_sum(jsons: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for j in jsons:
        for name, st in orjson.loads(j).items():
            cur = out.setdefault(name, [0, 0, 0.0, 0.0])
            cur[0] += st["count"]
            cur[1] += st["successes"]
            cur[2] += st["duration_sum"]
            cur[3] += st["duration_sum_sq"]
    return out


class _Row(dict[str, Any]):
    pass


async def check_database(
    conn: asyncpg.Connection, stream: Stream, exp: Expected, *, check_raw: bool = True
) -> list[str]:
    """Every stored aggregate against the oracle; returns the differences (empty = exact)."""
    errors: list[str] = []
    schemas = stream.universe.schemas
    experiments = list(stream.universe.experiments)
    rows = await conn.fetch(
        _SUM_SQL.format(
            keys="schema_id, schema_version, variant_id, period_start",
            table="version_performance_metrics",
            where="schema_id = ANY($1::uuid[])",
        ),
        schemas,
    )
    got_keys = set()
    entity_sketch: dict[Any, DurationSketch] = defaultdict(DurationSketch)
    entity_durations: dict[Any, list[float]] = defaultdict(list)
    for r in rows:
        key = (
            str(r["schema_id"]),
            r["schema_version"],
            None if r["variant_id"] is None else str(r["variant_id"]),
            hour_of(r["period_start"]),
        )
        got_keys.add(key)
        want = exp.versions.get(key)
        if want is None:
            errors.append(f"unexpected row {key}")
            continue
        sk = DurationSketch()
        for blob in r["sketches"]:
            sk.merge(decode_sketch(blob))
        entity_sketch[key[:3]].merge(sk)
        entity_durations[key[:3]].extend(want.durations)
        row = _Row(r)
        row["steps"] = _steps_sum(r["step_json"])
        _check_agg(key, row, sk, want, errors)  # type: ignore[arg-type]
    missing = set(exp.versions) - got_keys
    if missing:
        errors.append(f"{len(missing)} version rows missing, e.g. {sorted(missing, key=str)[:3]}")
    for ent, sk in entity_sketch.items():  # merging every hour and partition of an entity
        if not sketch_ok(sk, entity_durations[ent]):
            errors.append(f"merged sketch of {ent} outside the guarantee")

    rows = await conn.fetch(
        _SUM_SQL.format(
            keys="experiment_id, variant_id, period_start",
            table="experiment_variant_metrics",
            where="experiment_id = ANY($1::uuid[])",
        ),
        experiments,
    )
    got_e = set()
    for r in rows:
        key = (str(r["experiment_id"]), str(r["variant_id"]), hour_of(r["period_start"]))
        got_e.add(key)
        want = exp.experiments.get(key)
        if want is None:
            errors.append(f"unexpected experiment row {key}")
            continue
        sk = DurationSketch()
        for blob in r["sketches"]:
            sk.merge(decode_sketch(blob))
        row = _Row(r)
        row["steps"] = _steps_sum(r["step_json"])
        _check_agg(key, row, sk, want, errors)  # type: ignore[arg-type]
    missing_e = set(exp.experiments) - got_e
    if missing_e:
        errors.append(f"{len(missing_e)} experiment rows missing")
    # running per-variant sketches = merge of the variant's hourly sketches, partition by partition
    variants = [v for vs in stream.universe.variants.values() for v in vs if v is not None]
    hourly = await conn.fetch(
        "SELECT variant_id::text AS v, source_partition AS p, duration_sketch FROM version_performance_metrics "
        "WHERE variant_id = ANY($1::uuid[]) AND period_type = 'hour'",
        variants,
    )
    running = await conn.fetch(
        "SELECT variant_id::text AS v, source_partition AS p, duration_count, duration_sketch "
        "FROM aggregator_variant_durations WHERE variant_id = ANY($1::uuid[])",
        variants,
    )
    want_running: dict[tuple[str, int], DurationSketch] = defaultdict(DurationSketch)
    for r in hourly:
        want_running[(r["v"], r["p"])].merge(decode_sketch(r["duration_sketch"]))
    got_running = {(r["v"], r["p"]): decode_sketch(r["duration_sketch"]) for r in running}
    if got_running != dict(want_running):
        errors.append("aggregator_variant_durations differ from the merged hourly sketches")
    if any(r["duration_count"] != want_running[(r["v"], r["p"])].count for r in running):
        errors.append("aggregator_variant_durations counts differ")
    if check_raw:
        ids = list(exp.executions)
        n = await conn.fetchval(
            "SELECT count(*) FROM workflow_executions WHERE execution_id = ANY($1::text[])", ids
        )
        if n != exp.distinct:
            errors.append(f"workflow_executions holds {n} of {exp.distinct} distinct executions")
        prefix_total = await conn.fetchval(
            "SELECT count(*) FROM workflow_executions WHERE schema_id = ANY($1::uuid[])", schemas
        )
        if prefix_total != exp.distinct:
            errors.append(
                f"workflow_executions holds {prefix_total} rows of these schemas, want {exp.distinct}"
            )
    return errors


async def read_dead_letters(
    bootstrap: str, topic: str, want: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The dead letters on ``topic`` (waits until ``want`` arrived or ``timeout``)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                out.extend(orjson.loads(r.value) for r in recs)
            if len(out) >= want and not batch:
                break
    finally:
        await consumer.stop()
    return out


def expected_exposures(stream: Stream) -> dict[tuple[str, str], tuple[str, datetime]]:
    """(experiment, unit) -> (variant, first exposure) of the valid exposures."""
    first: dict[tuple[str, str], tuple[str, datetime]] = {}
    for _, value in stream.exposures:
        try:
            ev = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        key = (ev["experiment_id"], ev["unit_id"])
        ts = datetime.fromisoformat(ev["exposed_at"])
        cur = first.get(key)
        if cur is None or ts < cur[1]:
            first[key] = (ev["variant_id"], ts)
    return first


async def check_exposures(conn: asyncpg.Connection, stream: Stream) -> list[str]:
    want = expected_exposures(stream)
    rows = await conn.fetch(
        "SELECT experiment_id::text AS e, unit_id, variant_id::text AS v, first_exposed_at "
        "FROM experiment_exposures WHERE experiment_id = ANY($1::uuid[])",
        list(stream.universe.experiments),
    )
    got = {(r["e"], r["unit_id"]): (r["v"], r["first_exposed_at"]) for r in rows}
    errors = []
    if set(got) != set(want):
        errors.append(f"exposed units {len(got)} != {len(want)}")
    for k, (v, ts) in want.items():
        g = got.get(k)
        if g is not None and (g[0] != v or g[1] != ts):
            errors.append(f"exposure {k}: {g} != {(v, ts)}")
            if len(errors) > 20:
                break
    per_arm_want = Counter(v for v, _ in want.values())
    per_arm_got = Counter(v for v, _ in got.values())
    if per_arm_want != per_arm_got:
        errors.append("distinct units per arm differ")
    return errors
