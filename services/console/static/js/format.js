// Pure formatting helpers (no DOM): every number the console shows goes through here.

export const DASH = "—";

const METRIC_LABELS = {
  success_rate: "Success rate",
  execution_time: "Execution time",
  risk_score: "Risk score",
};

const RECOMMENDATIONS = {
  adopt_comparison: { label: "Adopt treatment", tone: "good" },
  keep_baseline: { label: "Keep baseline", tone: "bad" },
  inconclusive: { label: "Inconclusive", tone: "neutral" },
  needs_more_data: { label: "Needs more data", tone: "muted" },
};

export function isNum(x) {
  return typeof x === "number" && Number.isFinite(x);
}

function group(intString) {
  return intString.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** 1234567 -> "1,234,567"; 1234.5 -> "1,234.5" (digits after the point kept as given). */
export function fmtCount(n, digits = 0) {
  if (!isNum(n)) return DASH;
  const neg = n < 0;
  const fixed = Math.abs(n).toFixed(digits);
  const [i, f] = fixed.split(".");
  return (neg && Number(fixed) !== 0 ? "-" : "") + group(i) + (f ? "." + f : "");
}

/** A proportion as a percentage: 0.1234 -> "12.3%". */
export function fmtPercent(p, digits = 1) {
  if (!isNum(p)) return DASH;
  return `${(p * 100).toFixed(digits)}%`;
}

/** A percentage that is already in 0..100: 62.04 -> "62%". */
export function fmtPct(value, digits = 0) {
  if (!isNum(value)) return DASH;
  return `${value.toFixed(digits)}%`;
}

function signed(text, x) {
  const magnitude = text.replace(/^-/, "");
  if (!/[1-9]/.test(magnitude)) return magnitude; // rounds to zero: no sign
  if (x > 0) return `+${magnitude}`;
  if (x < 0) return `−${magnitude}`;
  return magnitude;
}

/** Milliseconds, scaled: 850 -> "850 ms", 1530 -> "1.53 s", 125000 -> "2.1 min". */
export function fmtMs(ms) {
  if (!isNum(ms)) return DASH;
  const a = Math.abs(ms);
  const sign = ms < 0 ? "-" : "";
  if (a < 10) return `${sign}${a.toFixed(2)} ms`;
  if (a < 1000) return `${sign}${a.toFixed(0)} ms`;
  if (a < 60000) return `${sign}${(a / 1000).toFixed(a < 10000 ? 2 : 1)} s`;
  if (a < 3600000) return `${sign}${(a / 60000).toFixed(1)} min`;
  return `${sign}${(a / 3600000).toFixed(1)} h`;
}

/** A risk score (0..1): 0.41234 -> "0.412". */
export function fmtRisk(x) {
  return isNum(x) ? x.toFixed(3) : DASH;
}

/** A p-value: < 0.001 is shown as such, otherwise three decimals. */
export function fmtP(p) {
  if (!isNum(p)) return DASH;
  if (p < 0.001) return "< 0.001";
  if (p > 0.999) return "1.000";
  return p.toFixed(3);
}

/** A relative change: 0.0523 -> "+5.2%", -0.1 -> "−10.0%". */
export function fmtLift(rel, digits = 1) {
  if (!isNum(rel)) return DASH;
  return signed(`${(rel * 100).toFixed(digits)}%`, rel);
}

/** The value of a metric in its unit. */
export function fmtMetricValue(metric, value) {
  if (metric === "success_rate") return fmtPercent(value);
  if (metric === "execution_time") return fmtMs(value);
  if (metric === "risk_score") return fmtRisk(value);
  return isNum(value) ? value.toPrecision(4) : DASH;
}

/** A difference of a metric, signed, in its unit (success rate in percentage points). */
export function fmtMetricDelta(metric, diff) {
  if (!isNum(diff)) return DASH;
  if (metric === "success_rate") return signed(`${(diff * 100).toFixed(1)} pp`, diff);
  if (metric === "execution_time") return signed(fmtMs(diff), diff);
  if (metric === "risk_score") return signed(diff.toFixed(3), diff);
  return signed(diff.toPrecision(3), diff);
}

/** A confidence interval of a difference: "−0.4 pp to +6.6 pp". */
export function fmtInterval(metric, low, high) {
  if (!isNum(low) || !isNum(high)) return DASH;
  return `${fmtMetricDelta(metric, low)} to ${fmtMetricDelta(metric, high)}`;
}

export function metricLabel(metric) {
  return METRIC_LABELS[metric] ?? String(metric).replace(/_/g, " ");
}

export function recommendation(code) {
  return RECOMMENDATIONS[code] ?? { label: code ? String(code).replace(/_/g, " ") : DASH, tone: "muted" };
}

export function statusLabel(status) {
  if (!status) return DASH;
  return status.charAt(0).toUpperCase() + status.slice(1);
}

/** An ISO timestamp as "2025-12-22 10:00 UTC" (the platform's times are UTC). */
export function fmtDateTime(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  const s = d.toISOString();
  return `${s.slice(0, 10)} ${s.slice(11, 16)} UTC`;
}

/** An ISO timestamp as its UTC date: "2025-12-22". */
export function fmtDate(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? DASH : d.toISOString().slice(0, 10);
}

/** Days as a readable duration: 0.25 -> "6 h", 3.24 -> "3.2 days". */
export function fmtDays(days) {
  if (!isNum(days)) return DASH;
  if (days < 1) return `${Math.max(1, Math.round(days * 24))} h`;
  return `${days.toFixed(1)} days`;
}

/**
 * How a comparison reads: "better" (significant, in the good direction), "worse"
 * (significant, in the bad direction) or "neutral".
 */
export function effectTone(result) {
  if (!result || !result.is_significant) return "neutral";
  if (result.direction_good === true) return "better";
  if (result.direction_good === false) return "worse";
  return "neutral";
}

/** A short label of the bucket start: day "12-22", week "W 12-22". */
export function bucketLabel(iso, granularity) {
  const day = fmtDate(iso);
  if (day === DASH) return DASH;
  return granularity === "week" ? `W ${day.slice(5)}` : day.slice(5);
}
