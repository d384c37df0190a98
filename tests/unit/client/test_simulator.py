"""The simulator: its sampled outcomes follow the configured true behaviour, runs are
deterministic for a seed, the rate limit holds, and the CLI and progress bar work."""

from __future__ import annotations

import io
import json
import math
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.simulator import (
    DEFAULT_BEHAVIOURS,
    BehaviourSet,
    DurationBehaviour,
    ProgressBar,
    RiskBehaviour,
    SimulationConfig,
    StepBehaviour,
    VariantBehaviour,
    format_summary,
    run_simulation,
    sample_outcome,
)
from services.simulator.cli import main as cli_main
from shared.client import AbflowClient
from tests.unit.client.client_fakes import FakeAssignmentService, MemorySink, split_arm

pytestmark = pytest.mark.unit

BEHAVIOUR = VariantBehaviour(
    success_probability=0.7,
    duration=DurationBehaviour(median_ms=800, sigma=0.5),
    risk=RiskBehaviour(alpha=2, beta=6),
    steps=[
        StepBehaviour(name="a", share=1, failure_weight=1),
        StepBehaviour(name="b", share=2, failure_weight=0),
        StepBehaviour(name="c", share=1, failure_weight=3),
    ],
)


def test_sampled_outcomes_match_the_true_behaviour() -> None:
    n = 40_000
    rng = random.Random(123)
    outs = [sample_outcome(rng, BEHAVIOUR) for _ in range(n)]
    p = BEHAVIOUR.success_probability
    rate = sum(o.success for o in outs) / n
    assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n)

    durations = [o.duration_ms for o in outs]
    logs = [math.log(d) for d in durations]
    assert statistics.fmean(logs) == pytest.approx(math.log(800), abs=5 * 0.5 / math.sqrt(n))
    assert statistics.stdev(logs) == pytest.approx(0.5, rel=0.03)
    assert statistics.fmean(durations) == pytest.approx(BEHAVIOUR.duration.mean_ms, rel=0.02)

    risks = [o.risk_score for o in outs]
    assert all(r is not None and 0 <= r <= 1 for r in risks)
    assert statistics.fmean(r for r in risks if r is not None) == pytest.approx(0.25, abs=0.005)


def test_steps_split_the_duration_and_failures_follow_the_weights() -> None:
    rng = random.Random(5)
    failing: Counter[str] = Counter()
    for _ in range(20_000):
        o = sample_outcome(rng, BEHAVIOUR)
        assert sum(s.duration_ms for s in o.steps) == pytest.approx(o.duration_ms)
        if o.success:
            assert [s.name for s in o.steps] == ["a", "b", "c"]
            assert all(s.success for s in o.steps)
            assert o.steps[1].duration_ms == pytest.approx(o.duration_ms / 2)
        else:
            *before, last = o.steps
            assert not last.success and all(s.success for s in before)
            failing[last.name] += 1
    total = sum(failing.values())
    assert failing["b"] == 0  # failure_weight 0
    assert failing["c"] / total == pytest.approx(0.75, abs=0.02)


def test_behaviour_without_risk_or_steps() -> None:
    b = VariantBehaviour(success_probability=1, duration=DurationBehaviour(median_ms=5, sigma=0))
    o = sample_outcome(random.Random(1), b)
    assert o.success and o.duration_ms == 5 and o.risk_score is None and o.steps == ()


def test_behaviour_validation() -> None:
    with pytest.raises(ValidationError):
        VariantBehaviour(success_probability=1.2, duration=DurationBehaviour(median_ms=1))
    with pytest.raises(ValidationError, match="failure_weight"):
        VariantBehaviour(
            success_probability=0.5,
            duration=DurationBehaviour(median_ms=1),
            steps=[StepBehaviour(name="x", failure_weight=0)],
        )
    with pytest.raises(ValidationError):
        BehaviourSet.model_validate({"default": BEHAVIOUR.model_dump(), "typo": {}})


def test_behaviour_file_round_trip_and_arm_lookup(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(DEFAULT_BEHAVIOURS.model_dump_json())
    loaded = BehaviourSet.from_file(path)
    assert loaded == DEFAULT_BEHAVIOURS
    assert loaded.for_arm("treatment").success_probability == 0.85
    assert loaded.for_arm("control") == loaded.for_arm("base") == loaded.default


def test_the_demo_behaviour_file_is_valid() -> None:
    path = Path(__file__).resolve().parents[3] / "deploy" / "demo" / "behaviour.json"
    b = BehaviourSet.from_file(path)
    control, treatment = b.for_arm("control"), b.for_arm("treatment")
    assert treatment.success_probability > control.success_probability
    assert treatment.duration.mean_ms < control.duration.mean_ms


async def _simulate(seed: int, n: int = 400, **kwargs: object) -> tuple[MemorySink, object]:
    sink = MemorySink()
    service = FakeAssignmentService()
    async with AbflowClient(
        "http://assignment.test", transport=service.transport(), sink=sink
    ) as client:
        result = await run_simulation(
            client,
            SimulationConfig(schema="s", executions=n, seed=seed, run_id="r", **kwargs),  # type: ignore[arg-type]
            DEFAULT_BEHAVIOURS,
        )
    return sink, result


async def test_runs_are_deterministic_for_a_seed_whatever_the_concurrency() -> None:
    a, ra = await _simulate(seed=3, concurrency=1)
    b, rb = await _simulate(seed=3, concurrency=50)
    c, _ = await _simulate(seed=4, concurrency=50)

    def key(sink: MemorySink) -> list[tuple[object, ...]]:
        return sorted(
            (e.execution_id, e.unit_id, e.variant_key, e.success, e.duration_ms, e.risk_score)
            for e in sink.events
        )

    assert key(a) == key(b) != key(c)
    assert ra.to_dict()["by_arm"] == rb.to_dict()["by_arm"]  # type: ignore[attr-defined]


async def test_simulation_tallies_and_uses_the_assigned_arm() -> None:
    sink, result = await _simulate(seed=9, n=300, units=50)
    assert result.sent == 300 and result.failed == 0  # type: ignore[attr-defined]
    assert {e.unit_id for e in sink.events} == {f"unit-9-{i}" for i in range(50)}
    for e in sink.events:
        assert e.variant_key == split_arm(e.unit_id or "")
        assert e.execution_id.startswith("r-")
    per_arm = Counter(e.variant_key for e in sink.events)
    assert {k: t.sent for k, t in result.by_arm.items()} == per_arm  # type: ignore[attr-defined]
    assert result.by_reason == {"experiment": 300}  # type: ignore[attr-defined]
    text = format_summary(result, DEFAULT_BEHAVIOURS, "s")  # type: ignore[arg-type]
    assert "treatment" in text and "control" in text and "sent 300" in text


async def test_the_rate_limit_paces_the_fleet() -> None:
    t0 = time.monotonic()
    _, result = await _simulate(seed=1, n=40, rate=200.0, concurrency=8)
    elapsed = time.monotonic() - t0
    assert result.sent == 40  # type: ignore[attr-defined]
    assert elapsed >= 39 / 200


def test_progress_bar_plain_text_output() -> None:
    out = io.StringIO()
    now = [0.0]
    bar = ProgressBar(100, "sim", stream=out, clock=lambda: now[0])
    for _ in range(100):
        now[0] += 0.01
        bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0% (first update) then every 10%
    assert lines[-1].startswith("sim [" + "#" * 30 + "] 100/100 100%")
    assert "100/s" in lines[-1]


def test_cli_prints_the_built_in_behaviour(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["--print-behaviour"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert BehaviourSet.model_validate(data) == DEFAULT_BEHAVIOURS


def test_cli_rejects_a_bad_behaviour_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"default": {}}')
    assert cli_main(["--schema", "s", "--behaviour-file", str(bad)]) == 2
    assert "behaviour file" in capsys.readouterr().err
