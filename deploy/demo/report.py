"""Reading the analysis service's experiment status and rendering the demo report.

The status JSON (``GET /api/v1/experiments/{id}/status``) is read defensively: every
value is looked up under a few plausible names and shapes (see :data:`ASSUMED_SHAPE`),
a missing value prints as ``n/a`` and never fails the report. Per-variant success-rate
confidence intervals the service does not give are computed here (Wilson score
interval at the experiment's confidence level) and marked ``*``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

__all__ = [
    "ASSUMED_SHAPE",
    "Comparison",
    "Status",
    "VariantRow",
    "merge_performance",
    "parse_status",
    "render_report",
    "wilson_interval",
]

ASSUMED_SHAPE = """\
{
  "experiment_id", "experiment_key", "status", "confidence_level", "primary_metric",
  "variants": [                         # or a mapping variant key -> row; or "arms"
    {"variant_id", "variant_key", "is_control", "traffic_percentage",
     "n",                               # or sample_size / executions / total_executions
     "success_rate" | {"value"|"rate"|"mean", "ci_low", "ci_high"},
     "successes",
     "execution_time": {"mean", "p50", "p95", "p99"}   # or flat mean_execution_time_ms,
                                                        # p95_execution_time_ms, ...
     "risk_score": {"mean"}             # or avg_risk_score / mean_risk_score
    }, ...],
  "analysis": {                         # shared.stats.ExperimentAnalysis.to_dict(); or at top level
    "control", "primary_metric", "confidence_level",
    "treatments": {"<arm>": {"recommendation",
                             "metrics": {"<metric>": MetricComparison.to_dict()}}},
    "srm": {"observed", "expected", "statistic", "df", "p_value", "is_mismatch", "threshold"},
    "recommendation", "winner"
  }
}"""
"""What the renderer looks for (the names it tries first)."""

_N_KEYS = ("n", "sample_size", "executions", "total_executions", "count", "total")
_METRIC_ALIASES: dict[str, tuple[str, ...]] = {
    "success_rate": ("success_rate", "conversion_rate"),
    "execution_time": ("execution_time", "execution_time_ms", "duration", "duration_ms"),
    "risk_score": ("risk_score", "risk"),
}
_STAT_ALIASES: dict[str, tuple[str, ...]] = {
    "value": ("value", "rate", "mean", "avg", "estimate"),
    "mean": ("mean", "avg", "average", "value"),
    "p50": ("p50", "median"),
    "p95": ("p95",),
    "p99": ("p99",),
    "ci_low": ("ci_low", "ci_lower", "lower"),
    "ci_high": ("ci_high", "ci_upper", "upper"),
}
_UNITS = {"execution_time": " ms"}


# --------------------------------------------------------------------------- lookups


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def _first(obj: Any, *keys: str) -> Any:
    if not isinstance(obj, Mapping):
        return None
    for key in keys:
        if obj.get(key) is not None:
            return obj[key]
    return None


def _stat(row: Mapping[str, Any], metric: str, stat: str) -> float | None:
    """``row``'s ``stat`` of ``metric`` under the usual shapes: nested
    (``row[metric][stat]``, ``row["metrics"][metric][stat]``), flat
    (``{stat}_{metric}``, ``{metric}_{stat}``, ``avg_{metric}``) or, for the value of a
    rate, the metric itself (``row["success_rate"] = 0.8``)."""
    metrics = _METRIC_ALIASES.get(metric, (metric,))
    stats = _STAT_ALIASES.get(stat, (stat,))
    containers = [row, *(row.get(k) for k in ("metrics", "stats", "summary"))]
    for container in containers:
        if not isinstance(container, Mapping):
            continue
        for m in metrics:
            nested = container.get(m)
            if _is_comparison(nested):
                continue  # a test against the control, not this arm's own statistic
            if isinstance(nested, Mapping):
                v = _num(_first(nested, *stats))
                if v is not None:
                    return v
                ci = nested.get("ci")
                if stat in ("ci_low", "ci_high") and isinstance(ci, Sequence) and len(ci) == 2:
                    return _num(ci[0 if stat == "ci_low" else 1])
            elif stat in ("value", "mean") and _num(nested) is not None:
                return _num(nested)
            for s in stats:
                for name in (f"{s}_{m}", f"{m}_{s}", f"{s}_{m}_ms", f"{m}_ms_{s}"):
                    v = _num(container.get(name))
                    if v is not None:
                        return v
            ci = container.get(f"{m}_ci")
            if stat in ("ci_low", "ci_high") and isinstance(ci, Sequence) and len(ci) == 2:
                return _num(ci[0 if stat == "ci_low" else 1])
    return None


def _is_comparison(obj: Any) -> bool:
    return isinstance(obj, Mapping) and any(
        k in obj for k in ("difference", "baseline", "p_value", "comparison")
    )


def wilson_interval(successes: float, n: float, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(centre - half, 0.0), min(centre + half, 1.0)


# --------------------------------------------------------------------------- parsed form


@dataclass
class VariantRow:
    key: str
    variant_id: str | None = None
    is_control: bool = False
    n: int | None = None
    success_rate: float | None = None
    success_ci: tuple[float, float] | None = None
    ci_computed: bool = False
    mean_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    mean_risk: float | None = None
    weight: float | None = None
    from_performance: bool = False


@dataclass
class Comparison:
    treatment: str
    metric: str
    data: Mapping[str, Any]


@dataclass
class Status:
    raw: Mapping[str, Any]
    confidence: float
    primary_metric: str | None
    variants: list[VariantRow] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    srm: Mapping[str, Any] | None = None
    recommendation: str | None = None
    winner: str | None = None
    treatment_recommendations: dict[str, str] = field(default_factory=dict)

    @property
    def total_n(self) -> int | None:
        ns = [v.n for v in self.variants if v.n is not None]
        if ns:
            return sum(ns)
        total = _num(_first(self.raw, "total_executions", "total_n", "sample_size", "n"))
        if total is not None:
            return int(total)
        observed = (self.srm or {}).get("observed")
        if isinstance(observed, Sequence) and observed:
            return int(sum(_num(o) or 0 for o in observed))
        return None

    def label(self, arm: str | None) -> str | None:
        """A variant key for an arm given by key or id."""
        if arm is None:
            return None
        for v in self.variants:
            if arm in (v.key, v.variant_id):
                return v.key
        return arm


def _variant_rows(raw: Any, analysis: Mapping[str, Any], confidence: float) -> list[VariantRow]:
    source = _first(raw, "variants", "arms", "variant_stats", "per_variant", "variant_metrics")
    items: Iterable[tuple[str | None, Any]]
    if isinstance(source, Mapping):
        items = source.items()
    elif isinstance(source, Sequence) and not isinstance(source, str):
        items = ((None, row) for row in source)
    else:
        items = ()
    control = _first(analysis, "control")
    rows: list[VariantRow] = []
    for name, row in items:
        if not isinstance(row, Mapping):
            continue
        key = str(_first(row, "variant_key", "key", "variant", "name") or name or "?")
        vid = _first(row, "variant_id", "id")
        v = VariantRow(key=key, variant_id=str(vid) if vid is not None else None)
        is_control = _first(row, "is_control", "control")
        v.is_control = bool(is_control) if is_control is not None else control in (key, vid)
        n = _num(_first(row, *_N_KEYS))
        if n is None:
            n = _num(_first(_first(row, "success_rate"), "n", "trials"))
        v.n = int(n) if n is not None else None
        v.weight = _num(_first(row, "traffic_percentage", "weight", "traffic_allocation"))
        v.success_rate = _stat(row, "success_rate", "value")
        successes = _num(_first(row, "successes", "success_count", "successful_executions"))
        if v.success_rate is None and successes is not None and v.n:
            v.success_rate = successes / v.n
        lo, hi = _stat(row, "success_rate", "ci_low"), _stat(row, "success_rate", "ci_high")
        if lo is not None and hi is not None:
            v.success_ci = (lo, hi)
        elif v.success_rate is not None and v.n:
            v.success_ci = wilson_interval(v.success_rate * v.n, v.n, confidence)
            v.ci_computed = True
        v.mean_ms = _stat(row, "execution_time", "mean")
        v.p50_ms = _stat(row, "execution_time", "p50")
        v.p95_ms = _stat(row, "execution_time", "p95")
        v.p99_ms = _stat(row, "execution_time", "p99")
        v.mean_risk = _stat(row, "risk_score", "mean")
        rows.append(v)
    return rows


def _comparisons(
    analysis: Mapping[str, Any], raw: Mapping[str, Any]
) -> tuple[list[Comparison], dict[str, str]]:
    out: list[Comparison] = []
    recs: dict[str, str] = {}
    variants = _first(raw, "variants", "arms")
    if isinstance(variants, Sequence) and not isinstance(variants, str):
        # per-variant results: {"variant_key", "is_control", "recommendation",
        #                       "metrics": {metric: comparison against the control}}
        for v in variants:
            if not isinstance(v, Mapping) or v.get("is_control"):
                continue
            arm = str(_first(v, "variant_key", "key", "variant_id") or "?")
            if v.get("recommendation") is not None:
                recs[arm] = str(v["recommendation"])
            metrics = v.get("metrics")
            if isinstance(metrics, Mapping):
                out.extend(
                    Comparison(arm, str(m), c) for m, c in metrics.items() if _is_comparison(c)
                )
    if out:
        return out, recs
    treatments = _first(analysis, "treatments", "comparisons", "results")
    if isinstance(treatments, Mapping):
        for arm, t in treatments.items():
            if not isinstance(t, Mapping):
                continue
            if t.get("recommendation") is not None:
                recs[str(arm)] = str(t["recommendation"])
            metrics = t.get("metrics")
            if isinstance(metrics, Mapping):
                out.extend(
                    Comparison(str(arm), str(m), c)
                    for m, c in metrics.items()
                    if isinstance(c, Mapping)
                )
    elif isinstance(treatments, Sequence):
        for c in treatments:
            if isinstance(c, Mapping):
                arm = _first(c, "treatment", "variant_key", "comparison_variant", "variant")
                out.append(Comparison(str(arm), str(_first(c, "metric") or "?"), c))
    return out, recs


def parse_status(raw: Mapping[str, Any]) -> Status:
    """Normalise an experiment status JSON (see :data:`ASSUMED_SHAPE`)."""
    analysis = _first(raw, "analysis", "results", "statistics")
    if not isinstance(analysis, Mapping) or not isinstance(
        _first(analysis, "treatments", "comparisons", "srm"), Mapping | Sequence
    ):
        analysis = raw
    confidence = _num(_first(analysis, "confidence_level")) or _num(_first(raw, "confidence_level"))
    confidence = confidence if confidence and 0 < confidence < 1 else 0.95
    comparisons, recs = _comparisons(analysis, raw)
    srm = _first(analysis, "srm", "srm_check", "sample_ratio_mismatch") or _first(
        raw, "srm", "srm_check"
    )
    rec = _first(analysis, "recommendation", "overall_recommendation") or _first(
        raw, "recommendation"
    )
    winner = _first(analysis, "winner", "winning_variant", "winning_variant_key") or _first(
        raw,
        "winner",
        "winner_variant_key",
        "winner_variant_id",
        "recorded_winner_variant_id",
        "winning_variant_key",
        "winning_variant_id",
    )
    if isinstance(rec, Mapping):
        rec = _first(rec, "recommendation", "action", "value")
    return Status(
        raw=raw,
        confidence=confidence,
        primary_metric=_first(analysis, "primary_metric") or _first(raw, "primary_metric"),
        variants=_variant_rows(raw, analysis, confidence)
        or _variant_rows(analysis, analysis, confidence),
        comparisons=comparisons,
        srm=srm if isinstance(srm, Mapping) else None,
        recommendation=str(rec) if rec is not None else None,
        winner=str(winner) if winner is not None else None,
        treatment_recommendations=recs,
    )


def merge_performance(status: Status, summary: Mapping[str, Any]) -> int:
    """Complete the variants' execution-time and risk figures the experiment status
    lacks (the percentiles) from ``GET /api/v1/performance/schemas/{id}/summary``, whose
    ``versions`` rows are per schema version and variant (``variant_id``,
    ``p50_execution_time_ms``, ...). Returns how many variants gained a value."""
    rows = _first(summary, "versions", "variants", "rows")
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        return 0
    completed = 0
    for v in status.variants:
        row = next(
            (
                r
                for r in rows
                if isinstance(r, Mapping)
                and (
                    (v.variant_id is not None and str(r.get("variant_id")) == v.variant_id)
                    or (v.variant_id is None and r.get("variant_key") == v.key)
                )
            ),
            None,
        )
        if row is None:
            continue
        gained = False
        for attr, metric, stat in (
            ("mean_ms", "execution_time", "mean"),
            ("p50_ms", "execution_time", "p50"),
            ("p95_ms", "execution_time", "p95"),
            ("p99_ms", "execution_time", "p99"),
            ("mean_risk", "risk_score", "mean"),
        ):
            if getattr(v, attr) is None:
                value = _stat(row, metric, stat)
                if value is not None:
                    setattr(v, attr, value)
                    gained = True
        v.from_performance |= gained
        completed += gained
    return completed


# --------------------------------------------------------------------------- rendering


def _fmt(x: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if x is None else format(x, spec) + suffix


def _p(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "<1e-12" if x < 1e-12 else (f"{x:.2e}" if x < 1e-3 else f"{x:.4f}")


def _metric_value(metric: str, x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    sign = "+" if signed else ""
    if metric == "success_rate":
        return f"{x * 100:{sign}.2f} pp" if signed else f"{x:.2%}"
    if metric == "execution_time":
        return f"{x:{sign},.0f} ms"
    return f"{x:{sign}.4f}"


def _variant_table(status: Status) -> list[str]:
    pct = f"{status.confidence:.0%}"
    head = (
        f"  {'variant':<14}{'role':<10}{'n':>8}  {'success rate [' + pct + ' CI]':<28}"
        f"{'mean ms':>9}{'P50':>8}{'P95':>8}{'P99':>8}{'risk':>8}"
    )
    lines = [head]
    any_computed = False
    for v in sorted(status.variants, key=lambda r: (not r.is_control, r.key)):
        ci = (
            f"[{v.success_ci[0]:.2%}, {v.success_ci[1]:.2%}]{'*' if v.ci_computed else ''}"
            if v.success_ci
            else ""
        )
        any_computed |= v.ci_computed
        sr = f"{_fmt(v.success_rate, '.2%')} {ci}"
        lines.append(
            f"  {v.key:<14}{'control' if v.is_control else 'treatment':<10}"
            f"{_fmt(v.n, ',.0f'):>8}  {sr:<28}{_fmt(v.mean_ms, ',.0f'):>9}"
            f"{_fmt(v.p50_ms, ',.0f'):>8}{_fmt(v.p95_ms, ',.0f'):>8}{_fmt(v.p99_ms, ',.0f'):>8}"
            f"{_fmt(v.mean_risk, '.3f'):>8}"
        )
    if any_computed:
        lines.append("  * Wilson interval computed by the demo from n and the success rate")
    if any(v.from_performance for v in status.variants):
        lines.append(
            "  execution-time percentiles and means not in the experiment status come from "
            "the schema's performance summary (quantile sketches)"
        )
    return lines


def _comparison_lines(status: Status) -> list[str]:
    if not status.comparisons:
        return ["  (the status has no comparisons)"]
    lines = [
        f"  {'treatment':<12}{'metric':<16}{'control':>11}{'treatment':>11}  "
        f"{'difference [' + f'{status.confidence:.0%}' + ' CI]':<38}{'lift':>8}"
        f"{'p':>10}{'p adj':>10}  {'effect size':<18}verdict"
    ]
    for c in status.comparisons:
        d = c.data
        m = c.metric
        base = _num(_first(_first(d, "baseline"), "mean")) or _num(_first(d, "baseline_mean"))
        comp = _num(_first(_first(d, "comparison"), "mean")) or _num(
            _first(d, "comparison_mean", "treatment_mean")
        )
        diff = _num(_first(d, "difference", "absolute_difference", "diff"))
        lo = _num(_first(d, "ci_low", "ci_lower"))
        hi = _num(_first(d, "ci_high", "ci_upper"))
        ci = d.get("ci") or d.get("confidence_interval")
        if (lo is None or hi is None) and isinstance(ci, Sequence) and len(ci) == 2:
            lo, hi = _num(ci[0]), _num(ci[1])
        lift = _num(_first(d, "relative_lift", "lift"))
        p = _num(_first(d, "p_value"))
        p_adj = _num(_first(d, "p_value_adjusted", "adjusted_p_value"))
        es = _num(_first(d, "effect_size", "cohens_d", "cohens_h"))
        es_name = str(_first(d, "effect_size_name") or ("h" if m == "success_rate" else "d"))
        significant = bool(_first(d, "is_significant", "significant"))
        good = _first(d, "direction_good", "is_improvement")
        verdict = (
            ("significant, better" if good else "significant, worse")
            if significant and good is not None
            else ("significant" if significant else "not significant")
        )
        diff_txt = (
            f"{_metric_value(m, diff, True)} "
            f"[{_metric_value(m, lo, True)}, {_metric_value(m, hi, True)}]"
        )
        lines.append(
            f"  {status.label(c.treatment) or '?':<12}{m:<16}{_metric_value(m, base):>11}"
            f"{_metric_value(m, comp):>11}  {diff_txt:<38}{_fmt(lift, '+.1%'):>8}"
            f"{_p(p):>10}{_p(p_adj):>10}  {es_name + ' ' + _fmt(es, '+.3f'):<17} {verdict}"
        )
    return lines


def _srm_line(status: Status) -> str:
    srm = status.srm
    if not srm:
        return "  (the status has no SRM check)"
    observed = srm.get("observed") or []
    expected = srm.get("expected") or []
    obs = " / ".join(f"{_num(o) or 0:,.0f}" for o in observed) if observed else "n/a"
    exp = " / ".join(f"{_num(e) or 0:,.0f}" for e in expected) if expected else "n/a"
    p = _num(_first(srm, "p_value"))
    mismatch = _first(srm, "is_mismatch", "mismatch", "srm_detected")
    threshold = _num(_first(srm, "threshold")) or 0.001
    verdict = "MISMATCH" if mismatch else ("ok" if mismatch is not None else "n/a")
    return (
        f"  observed {obs}; expected {exp}; chi2 = {_fmt(_num(srm.get('statistic')), '.3f')}, "
        f"p = {_p(p)} -> {verdict} (flagged when p < {threshold:g})"
    )


_RECOMMENDATION_TEXT = {
    "adopt_comparison": "ADOPT the treatment: significant improvement of the primary metric",
    "keep_baseline": "KEEP THE BASELINE: the treatment is significantly worse",
    "inconclusive": "INCONCLUSIVE: no significant difference on the primary metric",
    "needs_more_data": "NEEDS MORE DATA: an arm is below the minimum sample size",
}


def render_report(
    status: Status,
    *,
    title: str,
    header: Sequence[str] = (),
    links: Sequence[tuple[str, str]] = (),
) -> str:
    rule = "=" * 100
    out = [rule, title, rule, *header, ""]
    out.append("Variants")
    out.extend(_variant_table(status))
    out.append("")
    prim = status.primary_metric or "success_rate"
    out.append(
        f"Tests against the control (primary metric {prim}; two-sided; "
        f"p adj = Holm-adjusted across treatments)"
    )
    out.extend(_comparison_lines(status))
    out.append("")
    out.append("Sample ratio mismatch check (chi-squared against the configured split)")
    out.append(_srm_line(status))
    out.append("")
    rec = status.recommendation or "n/a"
    out.append(f"Recommendation: {_RECOMMENDATION_TEXT.get(rec, rec)} ({rec})")
    for arm, r in status.treatment_recommendations.items():
        out.append(f"  {status.label(arm)}: {r}")
    out.append(f"Winner: {status.label(status.winner) or 'none'}")
    if links:
        out.append("")
        out.append("Where to look next")
        width = max(len(k) for k, _ in links)
        out.extend(f"  {k:<{width}}  {v}" for k, v in links)
    out.append(rule)
    return "\n".join(out)
