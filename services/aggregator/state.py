"""Additive partial aggregates per (entity, UTC hour, source partition). Pure: no I/O.

An execution contributes to two entities:

- the **version** entity ``(schema_id, schema_version, variant_id or None)`` →
  ``version_performance_metrics``;
- the **experiment arm** ``(experiment_id, variant_id)`` when it carries both ids →
  ``experiment_variant_metrics``.

Each (entity, hour, partition) holds a :class:`PartialAggregate`: counts, sums and sums of
squares, min and max of duration and risk score, per-step counters and a
:class:`~services.aggregator.sketch.DurationSketch`. Merging two partial aggregates of the
same key gives exactly the aggregate of the union of their executions (up to float
rounding of the sums), so partitions, hours and flushes combine in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from services.aggregator.sketch import DurationSketch, decode_sketch, encode_sketch, key_of

__all__ = [
    "EPOCH",
    "HOUR",
    "Execution",
    "ExperimentKey",
    "Groups",
    "PartialAggregate",
    "PartitionState",
    "Pending",
    "VersionKey",
    "aggregate",
    "group",
    "hour_of",
    "hour_start",
    "steps_json",
    "summarize",
    "without",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
QUANTILES = (0.5, 0.95, 0.99)

# (schema_id, schema_version, variant_id | None, hour index, source partition)
VersionKey = tuple[str, int, str | None, int, int]
# (experiment_id, variant_id, hour index, source partition)
ExperimentKey = tuple[str, str, int, int]


class Execution(NamedTuple):
    """A decoded, valid execution event (ids as lower-case strings, times aware).

    The first sixteen fields are the columns of ``workflow_executions`` in the order the
    sink COPYs them (``sink._RAW_COLUMNS``, checked at import): a slice of the execution
    is its COPY row."""

    execution_id: str
    schema_id: str
    schema_version: int
    variant_id: str | None
    variant_key: str | None
    experiment_id: str | None
    unit_id: str | None
    success: bool
    duration_ms: float
    risk_score: float | None
    steps_doc: bytes  # ``steps`` as the JSON stored in ``workflow_executions.steps``
    assignment_reason: str | None
    started_at: datetime
    completed_at: datetime
    source_partition: int | None  # where the record was read (None outside a stream)
    source_offset: int | None
    steps: tuple[tuple[str, bool, float], ...]
    hour: int  # hours since the epoch of completed_at (UTC)
    completed_s: float  # completed_at as epoch seconds (lateness checks)


def steps_json(steps: tuple[tuple[str, bool, float], ...]) -> bytes:
    """Steps as the JSON stored in ``workflow_executions.steps``."""
    if not steps:
        return b"[]"
    return orjson.dumps([{"name": n, "success": ok, "duration_ms": d} for n, ok, d in steps])


def hour_of(ts: datetime) -> int:
    """Whole hours between the epoch and ``ts`` (exact integer arithmetic)."""
    return (ts - EPOCH) // HOUR


def hour_start(hour: int) -> datetime:
    return EPOCH + hour * HOUR


class PartialAggregate:
    """Additive sufficient statistics of a set of executions."""

    __slots__ = (
        "d_count",
        "d_max",
        "d_min",
        "d_sq",
        "d_sum",
        "r_count",
        "r_max",
        "r_min",
        "r_sq",
        "r_sum",
        "sketch",
        "steps",
        "successes",
        "total",
    )

    def __init__(self) -> None:
        self.total = 0
        self.successes = 0
        self.d_count = 0
        self.d_sum = 0.0
        self.d_sq = 0.0
        self.d_min: float | None = None
        self.d_max: float | None = None
        self.r_count = 0
        self.r_sum = 0.0
        self.r_sq = 0.0
        self.r_min: float | None = None
        self.r_max: float | None = None
        self.sketch = DurationSketch()
        # step name -> [count, successes, duration_sum, duration_sum_sq]
        self.steps: dict[str, list[float]] = {}

    @property
    def failures(self) -> int:
        return self.total - self.successes

    def add(
        self,
        success: bool,
        duration: float,
        sketch_key: int | None,
        risk: float | None,
        steps: Iterable[tuple[str, bool, float]] = (),
    ) -> None:
        """Add one execution (``sketch_key`` = :func:`~services.aggregator.sketch.key_of` of
        the duration, computed once for every entity the execution feeds)."""
        self.total += 1
        if success:
            self.successes += 1
        self.d_count += 1
        self.d_sum += duration
        self.d_sq += duration * duration
        if self.d_min is None or duration < self.d_min:
            self.d_min = duration
        if self.d_max is None or duration > self.d_max:
            self.d_max = duration
        self.sketch.add_key(sketch_key)
        if risk is not None:
            self.r_count += 1
            self.r_sum += risk
            self.r_sq += risk * risk
            if self.r_min is None or risk < self.r_min:
                self.r_min = risk
            if self.r_max is None or risk > self.r_max:
                self.r_max = risk
        if steps:
            table = self.steps
            for name, ok, dur in steps:
                st = table.get(name)
                if st is None:
                    table[name] = [1, 1 if ok else 0, dur, dur * dur]
                else:
                    st[0] += 1
                    if ok:
                        st[1] += 1
                    st[2] += dur
                    st[3] += dur * dur

    @classmethod
    def of(cls, items: list[tuple[Execution, int | None]]) -> PartialAggregate:
        """The aggregate of ``(execution, sketch key)`` pairs (equal to adding them in order)."""
        out = cls()
        durs = [ex.duration_ms for ex, _ in items]
        out.total = out.d_count = len(items)
        out.successes = sum([1 for ex, _ in items if ex.success])
        out.d_sum = sum(durs, 0.0)
        out.d_sq = sum([d * d for d in durs], 0.0)
        out.d_min = min(durs)
        out.d_max = max(durs)
        risks = [ex.risk_score for ex, _ in items if ex.risk_score is not None]
        if risks:
            out.r_count = len(risks)
            out.r_sum = sum(risks, 0.0)
            out.r_sq = sum([r * r for r in risks], 0.0)
            out.r_min = min(risks)
            out.r_max = max(risks)
        bins = out.sketch.bins
        zeros = 0.0
        for _, key in items:
            if key is None:
                zeros += 1.0
            else:
                bins[key] = bins.get(key, 0.0) + 1.0
        out.sketch.zero_count = zeros
        table = out.steps
        for ex, _ in items:
            for name, ok, dur in ex.steps:
                st = table.get(name)
                if st is None:
                    table[name] = [1, 1 if ok else 0, dur, dur * dur]
                else:
                    st[0] += 1
                    if ok:
                        st[1] += 1
                    st[2] += dur
                    st[3] += dur * dur
        return out

    def merge(self, other: PartialAggregate) -> None:
        self.total += other.total
        self.successes += other.successes
        self.d_count += other.d_count
        self.d_sum += other.d_sum
        self.d_sq += other.d_sq
        self.d_min = _min(self.d_min, other.d_min)
        self.d_max = _max(self.d_max, other.d_max)
        self.r_count += other.r_count
        self.r_sum += other.r_sum
        self.r_sq += other.r_sq
        self.r_min = _min(self.r_min, other.r_min)
        self.r_max = _max(self.r_max, other.r_max)
        self.sketch.merge(other.sketch)
        table = self.steps
        for name, o in other.steps.items():
            st = table.get(name)
            if st is None:
                table[name] = list(o)
            else:
                st[0] += o[0]
                st[1] += o[1]
                st[2] += o[2]
                st[3] += o[3]

    def copy(self) -> PartialAggregate:
        out = PartialAggregate()
        out.merge(self)
        return out

    # ------------------------------------------------------------------ columns
    def step_metrics(self) -> dict[str, dict[str, float | int]]:
        return {
            name: {
                "count": int(st[0]),
                "successes": int(st[1]),
                "duration_sum": float(st[2]),
                "duration_sum_sq": float(st[3]),
            }
            for name, st in self.steps.items()
        }

    def percentiles(self) -> list[float | None]:
        return self.sketch.quantiles(QUANTILES)

    def columns(self) -> dict[str, Any]:
        """The metric columns shared by both metric tables (absolute values)."""
        p50, p95, p99 = self.percentiles()
        return {
            "total_executions": self.total,
            "successful_executions": self.successes,
            "failed_executions": self.failures,
            "duration_count": self.d_count,
            "duration_sum": self.d_sum,
            "duration_sum_sq": self.d_sq,
            "duration_min": self.d_min,
            "duration_max": self.d_max,
            "risk_count": self.r_count,
            "risk_sum": self.r_sum,
            "risk_sum_sq": self.r_sq,
            "risk_min": self.r_min,
            "risk_max": self.r_max,
            "duration_sketch": encode_sketch(self.sketch),
            "p50_execution_time_ms": p50,
            "p95_execution_time_ms": p95,
            "p99_execution_time_ms": p99,
            "step_metrics": self.step_metrics(),
        }

    def row_values(self) -> tuple[Any, ...]:
        """The metric columns in table order, as COPY values (sketch bytes, steps JSON)."""
        p50, p95, p99 = self.sketch.quantiles(QUANTILES)
        return (
            self.total,
            self.successes,
            self.total - self.successes,
            self.d_count,
            self.d_sum,
            self.d_sq,
            self.d_min,
            self.d_max,
            self.r_count,
            self.r_sum,
            self.r_sq,
            self.r_min,
            self.r_max,
            encode_sketch(self.sketch),
            p50,
            p95,
            p99,
            orjson.dumps(
                {
                    name: {
                        "count": int(st[0]),
                        "successes": int(st[1]),
                        "duration_sum": float(st[2]),
                        "duration_sum_sq": float(st[3]),
                    }
                    for name, st in self.steps.items()
                }
            ),
        )

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> PartialAggregate:
        """Inverse of :meth:`columns` (``step_metrics`` as a dict or JSON text)."""
        out = cls()
        out.total = int(row["total_executions"])
        out.successes = int(row["successful_executions"])
        out.d_count = int(row["duration_count"])
        out.d_sum = float(row["duration_sum"])
        out.d_sq = float(row["duration_sum_sq"])
        out.d_min = row["duration_min"]
        out.d_max = row["duration_max"]
        out.r_count = int(row["risk_count"])
        out.r_sum = float(row["risk_sum"])
        out.r_sq = float(row["risk_sum_sq"])
        out.r_min = row["risk_min"]
        out.r_max = row["risk_max"]
        out.sketch = decode_sketch(row["duration_sketch"])
        steps = row["step_metrics"]
        if isinstance(steps, str | bytes):
            import json

            steps = json.loads(steps)
        for name, st in (steps or {}).items():
            out.steps[name] = [
                int(st.get("count", 0)),
                int(st.get("successes", 0)),
                float(st.get("duration_sum", 0.0)),
                float(st.get("duration_sum_sq", 0.0)),
            ]
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PartialAggregate):
            return NotImplemented
        return all(getattr(self, s) == getattr(other, s) for s in self.__slots__)

    def __repr__(self) -> str:
        return (
            f"PartialAggregate(total={self.total}, successes={self.successes}, d_sum={self.d_sum})"
        )


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b


Groups = tuple[
    dict[VersionKey, list[tuple[Execution, int | None]]],
    dict[ExperimentKey, list[tuple[Execution, int | None]]],
]
"""Executions (with the sketch key of their duration) by version key and by experiment key."""


def group(executions: Iterable[tuple[int, Execution]]) -> Groups:
    """``(source partition, execution)`` pairs by key, in arrival order."""
    groups_v: dict[VersionKey, list[tuple[Execution, int | None]]] = {}
    groups_e: dict[ExperimentKey, list[tuple[Execution, int | None]]] = {}
    for partition, ex in executions:
        item = (ex, key_of(ex.duration_ms))
        vkey: VersionKey = (ex.schema_id, ex.schema_version, ex.variant_id, ex.hour, partition)
        g = groups_v.get(vkey)
        if g is None:
            groups_v[vkey] = [item]
        else:
            g.append(item)
        if ex.experiment_id is not None and ex.variant_id is not None:
            ekey: ExperimentKey = (ex.experiment_id, ex.variant_id, ex.hour, partition)
            ge = groups_e.get(ekey)
            if ge is None:
                groups_e[ekey] = [item]
            else:
                ge.append(item)
    return groups_v, groups_e


def without(
    groups: Groups, candidates: Iterable[tuple[int, Execution]], execution_ids: set[str]
) -> Groups:
    """``groups`` (of ``candidates``) minus the executions whose id is in
    ``execution_ids``; only the groups holding one are rebuilt, empty groups go."""
    if not execution_ids:
        return groups
    v_keys: set[VersionKey] = set()
    e_keys: set[ExperimentKey] = set()
    for partition, ex in candidates:
        if ex.execution_id in execution_ids:
            v_keys.add((ex.schema_id, ex.schema_version, ex.variant_id, ex.hour, partition))
            if ex.experiment_id is not None and ex.variant_id is not None:
                e_keys.add((ex.experiment_id, ex.variant_id, ex.hour, partition))
    out_v = dict(groups[0])
    for vk in v_keys:
        kept = [item for item in out_v[vk] if item[0].execution_id not in execution_ids]
        if kept:
            out_v[vk] = kept
        else:
            del out_v[vk]
    out_e = dict(groups[1])
    for ek in e_keys:
        kept = [item for item in out_e[ek] if item[0].execution_id not in execution_ids]
        if kept:
            out_e[ek] = kept
        else:
            del out_e[ek]
    return out_v, out_e


def summarize(
    groups: Groups,
) -> tuple[dict[VersionKey, PartialAggregate], dict[ExperimentKey, PartialAggregate]]:
    """The partial aggregate of each group."""
    versions = {k: PartialAggregate.of(g) for k, g in groups[0].items()}
    experiments = {k: PartialAggregate.of(g) for k, g in groups[1].items()}
    return versions, experiments


def aggregate(
    executions: Iterable[tuple[int, Execution]],
) -> tuple[dict[VersionKey, PartialAggregate], dict[ExperimentKey, PartialAggregate]]:
    """Partial aggregates of ``(source partition, execution)`` pairs, by key.

    Executions are grouped by key first, then each group is summed with built-ins (C loops
    over lists, in arrival order): the same values as adding them one by one, faster.
    """
    return summarize(group(executions))


# ---------------------------------------------------------------------- partitions


@dataclass
class Pending:
    """What the consumer read from one partition since the last flush started."""

    executions: list[Execution] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)  # Kafka timestamp (ms) of each execution
    futures: list[Any] = field(default_factory=list)  # dead letters being produced
    dead_letters: int = 0
    skipped: int = 0  # replayed records below the committed offset
    next_offset: int | None = None  # offset after the last record read
    watermark_s: float | None = None  # watermark after the last record read

    def __len__(self) -> int:
        return len(self.executions) + self.dead_letters


@dataclass
class PartitionState:
    """One owned source partition: committed progress plus a cache of its hourly rows.

    ``next_offset``/``watermark_s`` are what PostgreSQL holds (the compare-and-set base of
    the next flush); ``read_offset``/``read_watermark_s`` run ahead with the consumer.
    The caches hold the absolute partial aggregates of this partition's rows as stored in
    PostgreSQL; a missing key is loaded before it is merged into.
    """

    partition: int
    next_offset: int
    watermark_s: float | None
    read_offset: int = 0
    read_watermark_s: float | None = None
    pending: Pending = field(default_factory=Pending)
    versions: dict[VersionKey, PartialAggregate] = field(default_factory=dict)
    experiments: dict[ExperimentKey, PartialAggregate] = field(default_factory=dict)
    touched: dict[tuple[Any, ...], int] = field(default_factory=dict)  # key -> last flush seq
    # hours whose every stored row is cached (a key of such an hour that is not cached has
    # no row); ``complete`` = every hour (a partition without progress has no rows at all).
    loaded_hours: set[int] = field(default_factory=set)
    complete: bool = False
    # variant id -> running duration sketch of this partition (aggregator_variant_durations)
    variant_durations: dict[str, DurationSketch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.read_offset = self.next_offset
        self.read_watermark_s = self.watermark_s

    def take_pending(self) -> Pending:
        out, self.pending = self.pending, Pending()
        return out

    def evict_before(self, min_hour: int) -> int:
        """Drop cached rows of hours that can no longer change (before ``min_hour``)."""
        old_v = [k for k in self.versions if k[3] < min_hour]
        old_e = [k for k in self.experiments if k[2] < min_hour]
        for k in old_v:
            del self.versions[k]
            self.touched.pop(k, None)
        for ke in old_e:
            del self.experiments[ke]
            self.touched.pop(ke, None)
        # (``complete`` stays: an execution of these hours would be too late, never applied)
        self.loaded_hours = {h for h in self.loaded_hours if h >= min_hour}
        return len(old_v) + len(old_e)

    def evict_coldest(self, keep: int) -> int:
        """Keep at most ``keep`` cached rows, dropping the least recently flushed."""
        total = len(self.versions) + len(self.experiments)
        if total <= keep:
            return 0
        order = sorted(self.touched.items(), key=lambda kv: kv[1])
        dropped = 0
        for key, _ in order[: total - keep]:
            if len(key) == 5:
                self.versions.pop(key, None)
                self.loaded_hours.discard(key[3])
            else:
                self.experiments.pop(key, None)
                self.loaded_hours.discard(key[2])
            self.touched.pop(key, None)
            dropped += 1
        if dropped:
            self.complete = False
        return dropped

    def clear_cache(self) -> None:
        self.versions.clear()
        self.experiments.clear()
        self.touched.clear()
        self.loaded_hours.clear()
        self.variant_durations.clear()
        self.complete = False


def classify_time(
    completed_s: float,
    watermark_s: float | None,
    lateness_s: float,
    now_s: float,
    future_skew_s: float,
) -> str | None:
    """``None`` when the execution time is acceptable, else the dead-letter code."""
    if completed_s > now_s + future_skew_s:
        return "too_far_in_future"
    if watermark_s is not None and completed_s < watermark_s - lateness_s:
        return "too_late"
    return None
