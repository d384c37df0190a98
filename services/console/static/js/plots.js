// Pure chart geometry (no DOM): scales, ticks, the forest plot and the bar charts.
// Charts are returned as vnodes {tag, attrs, children} that dom.js turns into SVG
// elements, so the geometry is unit-tested without a browser.

import { effectTone, fmtLift, isNum, metricLabel } from "./format.js";

/** A vnode: an SVG element description. */
export function el(tag, attrs = {}, ...children) {
  return { tag, attrs, children: children.flat().filter((c) => c !== null && c !== undefined && c !== false) };
}

/** A "nice" step (1, 2, 2.5 or 5 × 10^k) giving about ``count`` intervals over ``span``. */
export function niceStep(span, count = 5) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nice * mag;
}

/** Round ``[lo, hi]`` outwards to multiples of a nice step; ticks included. */
export function niceDomain(lo, hi, count = 5) {
  if (!isNum(lo) || !isNum(hi)) return { lo: 0, hi: 1, step: 0.2, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] };
  if (lo > hi) [lo, hi] = [hi, lo];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.5;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(hi - lo, count);
  const nlo = Math.floor(lo / step + 1e-9) * step;
  const nhi = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let i = 0; nlo + i * step <= nhi + step * 1e-6; i += 1) {
    ticks.push(Number((nlo + i * step).toPrecision(12)));
  }
  return { lo: nlo, hi: nhi, step, ticks };
}

/** A linear map from the domain [d0, d1] onto the range [r0, r1]. */
export function linearScale(d0, d1, r0, r1) {
  const k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

function round(x) {
  return Math.round(x * 10) / 10;
}

// ------------------------------------------------------------------------ forest plot

/**
 * Rows of a forest plot from an experiment result (``/experiments/{id}/status``): one
 * row per treatment and metric, the effect as the RELATIVE lift against control (in %)
 * with its confidence interval, so metrics of different units share one axis.
 */
export function forestRows(result) {
  const rows = [];
  const metrics = result?.metrics ?? [];
  for (const v of result?.variants ?? []) {
    if (v.is_control) continue;
    for (const metric of metrics) {
      const r = v.metrics?.[metric];
      if (!r) continue;
      const pct = (x) => (isNum(x) ? x * 100 : null);
      rows.push({
        variant: v.variant_key ?? v.variant_id,
        metric,
        label: `${v.variant_key ?? "variant"} · ${metricLabel(metric)}`,
        estimate: pct(r.relative_lift),
        low: pct(r.lift_ci_low),
        high: pct(r.lift_ci_high),
        tone: effectTone(r),
        significant: Boolean(r.is_significant),
        pAdjusted: r.p_value_adjusted,
        primary: metric === result.primary_metric,
      });
    }
  }
  return rows;
}

/**
 * Geometry of a forest plot.
 * @param rows from forestRows (estimate/low/high in %)
 * @param opts width, rowHeight, labelWidth, valueWidth, top, bottom, maxAbs (axis clamp, %)
 */
export function forestGeometry(rows, opts = {}) {
  const width = opts.width ?? 640;
  const rowHeight = opts.rowHeight ?? 28;
  const labelWidth = opts.labelWidth ?? 200;
  const valueWidth = opts.valueWidth ?? 150;
  const top = opts.top ?? 10;
  const bottom = opts.bottom ?? 30;
  const maxAbs = opts.maxAbs ?? 200;
  const values = [0];
  for (const r of rows) {
    for (const x of [r.low, r.high, r.estimate]) if (isNum(x)) values.push(Math.max(-maxAbs, Math.min(maxAbs, x)));
  }
  const domain = niceDomain(Math.min(...values), Math.max(...values), 4);
  const x0 = labelWidth;
  const x1 = width - valueWidth;
  const x = linearScale(domain.lo, domain.hi, x0, x1);
  const clampX = (v) => round(x(Math.max(domain.lo, Math.min(domain.hi, v))));
  const height = top + rows.length * rowHeight + bottom;
  return {
    width,
    height,
    plot: { x0, x1, top, bottom: top + rows.length * rowHeight },
    zeroX: round(x(0)),
    ticks: domain.ticks.map((t) => ({ x: round(x(t)), value: t, label: `${t > 0 ? "+" : ""}${t}%` })),
    rows: rows.map((r, i) => {
      const y = round(top + i * rowHeight + rowHeight / 2);
      const hasCi = isNum(r.low) && isNum(r.high);
      return {
        y,
        label: r.label,
        tone: r.tone,
        primary: r.primary,
        valueText: isNum(r.estimate)
          ? `${fmtLift(r.estimate / 100)}${hasCi ? ` [${fmtLift(r.low / 100)}, ${fmtLift(r.high / 100)}]` : ""}`
          : "n/a",
        point: isNum(r.estimate) ? { x: clampX(r.estimate) } : null,
        line: hasCi ? { x1: clampX(r.low), x2: clampX(r.high) } : null,
        clippedLow: hasCi && r.low < domain.lo,
        clippedHigh: hasCi && r.high > domain.hi,
      };
    }),
  };
}

/** The forest plot as an SVG vnode. */
export function forestSvg(g, title = "Effect against control (relative lift, CI)") {
  const { plot } = g;
  return el(
    "svg",
    {
      class: "forest-plot",
      viewBox: `0 0 ${g.width} ${g.height}`,
      width: g.width,
      height: g.height,
      role: "img",
      "aria-label": title,
    },
    el("title", {}, title),
    g.ticks.map((t) =>
      el(
        "g",
        { class: "tick" },
        el("line", { x1: t.x, x2: t.x, y1: plot.top, y2: plot.bottom, class: "grid" }),
        el("text", { x: t.x, y: plot.bottom + 16, "text-anchor": "middle" }, t.label),
      ),
    ),
    el("line", { class: "zero", x1: g.zeroX, x2: g.zeroX, y1: plot.top - 4, y2: plot.bottom }),
    g.rows.map((r) =>
      el(
        "g",
        { class: `forest-row tone-${r.tone}${r.primary ? " primary" : ""}`, "data-label": r.label },
        el("text", { class: "row-label", x: plot.x0 - 8, y: r.y + 4, "text-anchor": "end" }, r.label),
        r.line ? el("line", { class: "ci", x1: r.line.x1, x2: r.line.x2, y1: r.y, y2: r.y }) : null,
        r.line && r.clippedLow ? el("path", { class: "clip", d: `M${r.line.x1 + 6},${r.y - 4} L${r.line.x1},${r.y} L${r.line.x1 + 6},${r.y + 4}` }) : null,
        r.line && r.clippedHigh ? el("path", { class: "clip", d: `M${r.line.x2 - 6},${r.y - 4} L${r.line.x2},${r.y} L${r.line.x2 - 6},${r.y + 4}` }) : null,
        r.point ? el("rect", { class: "estimate", x: r.point.x - 4, y: r.y - 4, width: 8, height: 8 }) : null,
        el("text", { class: "row-value", x: plot.x1 + 8, y: r.y + 4 }, r.valueText),
      ),
    ),
  );
}

// ------------------------------------------------------------------------ bar charts

/**
 * Geometry of a bar chart of ``points`` ({label, value, title}); null values are gaps.
 * @param opts width, height, left (axis labels), bottom (x labels), top, formatTick,
 *   zeroBased (default true), maxLabels (x labels shown at most)
 */
export function barGeometry(points, opts = {}) {
  const width = opts.width ?? 640;
  const height = opts.height ?? 200;
  const left = opts.left ?? 56;
  const right = opts.right ?? 8;
  const top = opts.top ?? 10;
  const bottom = opts.bottom ?? 24;
  const fmt = opts.formatTick ?? ((v) => String(v));
  const maxLabels = opts.maxLabels ?? 12;
  const finite = points.map((p) => p.value).filter(isNum);
  const hiData = finite.length ? Math.max(...finite) : 0;
  const loData = finite.length ? Math.min(...finite) : 0;
  const lo = opts.zeroBased === false ? loData : Math.min(0, loData);
  const domain = niceDomain(lo, hiData > lo ? hiData : lo + (opts.minSpan ?? 1), 4);
  const y = linearScale(domain.lo, domain.hi, height - bottom, top);
  const n = Math.max(1, points.length);
  const slot = (width - left - right) / n;
  const barW = Math.max(1, slot * 0.72);
  const every = Math.max(1, Math.ceil(n / maxLabels));
  return {
    width,
    height,
    empty: finite.length === 0,
    axis: { left, right: width - right, top, bottom: height - bottom },
    ticks: domain.ticks.map((t) => ({ y: round(y(t)), value: t, label: fmt(t) })),
    bars: points.map((p, i) => {
      const xMid = left + slot * i + slot / 2;
      const has = isNum(p.value);
      const yTop = has ? y(Math.max(p.value, domain.lo)) : y(domain.lo);
      const yBase = y(Math.max(domain.lo, Math.min(0, domain.hi)));
      return {
        x: round(xMid - barW / 2),
        w: round(barW),
        y: round(Math.min(yTop, yBase)),
        h: has ? round(Math.abs(yBase - yTop)) : 0,
        cx: round(xMid),
        value: has ? p.value : null,
        label: p.label,
        title: p.title ?? `${p.label}: ${has ? fmt(p.value) : "no data"}`,
        showLabel: (n - 1 - i) % every === 0, // counted from the newest bucket
      };
    }),
  };
}

/** A bar chart as an SVG vnode. */
export function barSvg(g, title) {
  const { axis } = g;
  return el(
    "svg",
    {
      class: "bar-chart",
      viewBox: `0 0 ${g.width} ${g.height}`,
      width: g.width,
      height: g.height,
      role: "img",
      "aria-label": title,
      preserveAspectRatio: "xMinYMin meet",
    },
    el("title", {}, title),
    g.ticks.map((t) =>
      el(
        "g",
        { class: "tick" },
        el("line", { class: "grid", x1: axis.left, x2: axis.right, y1: t.y, y2: t.y }),
        el("text", { x: axis.left - 6, y: t.y + 4, "text-anchor": "end" }, t.label),
      ),
    ),
    g.bars.map((b) =>
      el(
        "g",
        { class: b.value === null ? "bar empty" : "bar", "data-value": b.value === null ? "" : b.value },
        el("title", {}, b.title),
        el("rect", { x: b.x, y: b.y, width: b.w, height: Math.max(b.h, b.value === null ? 0 : 1) }),
        b.showLabel ? el("text", { class: "x-label", x: b.cx, y: axis.bottom + 16, "text-anchor": "middle" }, b.label) : null,
      ),
    ),
    g.empty ? el("text", { class: "no-data", x: (axis.left + axis.right) / 2, y: (axis.top + axis.bottom) / 2, "text-anchor": "middle" }, "No executions in this window") : null,
  );
}
