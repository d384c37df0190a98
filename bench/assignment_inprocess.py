"""In-process assignment benchmark: ``shared.assignment.decide`` against the official
GrowthBook SDK's ``eval_feature`` on the same 3-arm experiment.

Run: ``.venv/bin/python bench/assignment_inprocess.py [--n 200000]``. Prints a human
summary, then one JSON object on its last line. ``run_inprocess_bench(n)`` returns the
same dict for other scripts.

Method: ``n`` distinct UUID unit ids; each implementation is timed per call with
``time.perf_counter_ns`` (the timer's own ~0.1 µs is included in both) for p50/p99,
and in a second, untimed-per-call pass for decisions/s. The two implementations run
alternately in chunks so that background load hits both alike. GrowthBook uses one
reused instance with ``set_attributes({"id": unit})`` before each ``eval_feature``.
Both must produce the same assignment for every unit (``assignments_identical``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
import uuid
from array import array
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from growthbook import GrowthBook

from shared.assignment import BASE_VALUE, CompiledSchema, decide, sdk_features
from shared.events import (
    AssignmentConfig,
    ExperimentArm,
    ExperimentConfig,
    SchemaDefinition,
    VariantConfig,
)

P99_TARGET_US = 20.0
SPEEDUP_TARGET = 2.0
CHUNK = 10_000
WARMUP = 2_000


def build_config() -> AssignmentConfig:
    """A schema with three variants in a running 50/30/20 experiment, full coverage."""
    rnd = random.Random(42)

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rnd.getrandbits(128), version=4)

    base = SchemaDefinition(
        workflow_steps=[{"name": "fetch"}, {"name": "score"}, {"name": "decide"}],
        risk_config={"threshold": 0.7},
        config={"timeout_s": 30},
    )
    variants = [
        VariantConfig(
            variant_id=uid(),
            variant_key=key,
            base_version=1,
            traffic_allocation=0,
            effective_definition=base.model_copy(update={"config": {"timeout_s": t}}),
        )
        for key, t in (("control", 30), ("fast", 10), ("slow", 60))
    ]
    experiment = ExperimentConfig(
        experiment_id=uid(),
        experiment_key="checkout-timeouts",
        seed="checkout-timeouts-2024",
        coverage=1.0,
        arms=[
            ExperimentArm(
                variant_id=v.variant_id, variant_key=v.variant_key, weight=w, is_control=i == 0
            )
            for i, (v, w) in enumerate(zip(variants, (0.5, 0.3, 0.2), strict=True))
        ],
    )
    return AssignmentConfig(
        schema_id=uid(),
        schema_key="checkout",
        revision=1,
        base_version=1,
        base_definition=base,
        variants=variants,
        experiment=experiment,
        published_at=datetime(2024, 1, 1, tzinfo=UTC),
    )


def _percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    idx = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[idx] / 1000


def run_inprocess_bench(n: int = 200_000) -> dict[str, Any]:
    """Benchmark ``decide`` and GrowthBook ``eval_feature`` on ``n`` distinct unit ids."""
    cfg = build_config()
    compiled = CompiledSchema.from_config(cfg)
    gb = GrowthBook(features=sdk_features([cfg]))
    key = cfg.schema_key
    rnd = random.Random(7)
    units = [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(n)]
    rng = random.Random(1)

    def ours(unit: str) -> tuple[str, bool]:
        d = decide(compiled, unit, rng)
        return (d.variant_key or BASE_VALUE, d.in_experiment)

    def theirs(unit: str) -> tuple[Any, bool]:
        gb.set_attributes({"id": unit})
        r = gb.eval_feature(key)
        return (r.value, bool(r.experimentResult and r.experimentResult.inExperiment))

    try:
        for unit in units[:WARMUP]:
            ours(unit)
            theirs(unit)
        identical = all(ours(u) == theirs(u) for u in units[: min(n, 20_000)])

        # preallocated C arrays: no memory growth (page faults) inside the timed loops
        ours_ns = array("q", bytes(8 * n))
        theirs_ns = array("q", bytes(8 * n))
        ours_total = theirs_total = 0
        clock = time.perf_counter_ns
        gc.collect()
        for lo in range(0, n, CHUNK):
            chunk = units[lo : lo + CHUNK]
            # per-call latency
            for i, unit in enumerate(chunk, lo):
                t0 = clock()
                decide(compiled, unit, rng)
                ours_ns[i] = clock() - t0
            for i, unit in enumerate(chunk, lo):
                t0 = clock()
                gb.set_attributes({"id": unit})
                gb.eval_feature(key)
                theirs_ns[i] = clock() - t0
            # throughput (no per-call timer)
            t0 = clock()
            for unit in chunk:
                decide(compiled, unit, rng)
            ours_total += clock() - t0
            t0 = clock()
            for unit in chunk:
                gb.set_attributes({"id": unit})
                gb.eval_feature(key)
            theirs_total += clock() - t0
    finally:
        gb.destroy()

    ours_sorted = sorted(ours_ns)
    theirs_sorted = sorted(theirs_ns)
    ours_rate = n / (ours_total / 1e9)
    theirs_rate = n / (theirs_total / 1e9)
    return {
        "n": n,
        "inprocess_p50_us": round(_percentile(ours_sorted, 0.50), 3),
        "inprocess_p99_us": round(_percentile(ours_sorted, 0.99), 3),
        "inprocess_decisions_per_s": round(ours_rate),
        "growthbook_p50_us": round(_percentile(theirs_sorted, 0.50), 3),
        "growthbook_p99_us": round(_percentile(theirs_sorted, 0.99), 3),
        "growthbook_decisions_per_s": round(theirs_rate),
        "speedup": round(ours_rate / theirs_rate, 2),
        "assignments_identical": identical,
    }


def _summary(r: dict[str, Any], check: Callable[[bool], str]) -> str:
    return "\n".join(
        [
            f"assignment in-process benchmark, {r['n']:,} distinct unit ids, 3-arm experiment",
            f"  decide():                 p50 {r['inprocess_p50_us']:8.2f} µs   "
            f"p99 {r['inprocess_p99_us']:8.2f} µs   {r['inprocess_decisions_per_s']:>10,} /s",
            f"  growthbook eval_feature:  p50 {r['growthbook_p50_us']:8.2f} µs   "
            f"p99 {r['growthbook_p99_us']:8.2f} µs   {r['growthbook_decisions_per_s']:>10,} /s",
            f"  speed-up (throughput):    {r['speedup']:.2f}x "
            f"[target >= {SPEEDUP_TARGET}x: {check(r['speedup'] >= SPEEDUP_TARGET)}]",
            f"  p99 target <= {P99_TARGET_US} µs: {check(r['inprocess_p99_us'] <= P99_TARGET_US)}",
            f"  same assignments as the SDK: {check(r['assignments_identical'])}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=200_000, help="distinct unit ids")
    args = parser.parse_args()
    result = run_inprocess_bench(args.n)
    print(_summary(result, lambda ok: "ok" if ok else "MISSED"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
