"""The end-of-run summary of the simulator."""

from __future__ import annotations

from .behaviour import BehaviourSet
from .runner import SimulationResult

__all__ = ["format_summary"]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def format_summary(result: SimulationResult, behaviours: BehaviourSet, schema: str) -> str:
    """A table per arm: what was sent and, beside it, the true behaviour."""
    rate = result.sent / result.elapsed_s if result.elapsed_s > 0 else 0.0
    lines = [
        f"simulated {result.requested:,} executions of schema {schema!r} in "
        f"{result.elapsed_s:.1f} s ({rate:,.0f}/s), run id {result.run_id}",
        f"  sent {result.sent:,}   assignment errors {result.assign_errors:,}   "
        f"emit errors {result.emit_errors:,}",
        f"  {'arm':<16}{'sent':>9}{'share':>8}{'success':>9}{'(true)':>8}"
        f"{'mean ms':>10}{'(true)':>9}{'risk':>7}{'(true)':>8}",
    ]
    for arm, t in sorted(result.by_arm.items()):
        b = behaviours.for_arm(arm)
        share = t.sent / result.sent if result.sent else None
        lines.append(
            f"  {arm:<16}{t.sent:>9,}{_pct(share):>8}{_pct(t.success_rate):>9}"
            f"{_pct(b.success_probability):>8}{_num(t.mean_duration_ms, ',.0f'):>10}"
            f"{b.duration.mean_ms:>9,.0f}{_num(t.mean_risk, '.3f'):>7}"
            f"{_num(b.risk.mean if b.risk else None, '.3f'):>8}"
        )
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(result.by_reason.items()))
    lines.append(f"  by assignment reason: {reasons or 'none'}")
    exps = ", ".join(f"{k} {v:,}" for k, v in sorted(result.by_experiment.items()))
    lines.append(f"  by experiment: {exps or 'none'}")
    return "\n".join(lines)
